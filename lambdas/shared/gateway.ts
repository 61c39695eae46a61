import { ApiKeyStore } from './api-keys';
import { dynamo } from './aws/dynamo';
import { s3 } from './aws/s3';
import { secretValue } from './aws/secrets';
import { sendJob } from './aws/sqs';
import type { Config } from './config';
import type { Gateway } from './core/deps';
import { IdempotencyStore } from './idempotency';
import { policyFor } from './outbound';
import { providerFor } from './providers';
import { TaskStore } from './task-store';
import { VideoStore } from './videos';

/**
 * The gateway's collaborators, built from configuration. Every part is made on first use,
 * so a Lambda pays only for the clients its own work touches.
 */
export function gatewayFromConfig(config: Config): Gateway {
  const lazy = <T>(make: () => T) => {
    let value: T | undefined;
    return () => (value ??= make());
  };
  const store = lazy(() => new TaskStore(dynamo(), config.TABLE_NAME));
  const keys = lazy(() => new ApiKeyStore(dynamo(), config.TABLE_NAME, config.KEY_CACHE_SECONDS * 1000));
  const idempotency = lazy(() => new IdempotencyStore(dynamo(), config.TABLE_NAME));
  const provider = lazy(() => providerFor(config));
  const videos = lazy(
    () =>
      new VideoStore({
        s3: s3(),
        bucket: config.BUCKET_NAME,
        presignSeconds: config.PRESIGN_TTL_SECONDS,
        maxBytes: config.MAX_VIDEO_BYTES,
        policy: policyFor(config.LOCAL_MODE),
        timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      }),
  );
  return {
    config,
    get store() {
      return store();
    },
    get keys() {
      return keys();
    },
    get idempotency() {
      return idempotency();
    },
    get provider() {
      return provider();
    },
    get videos() {
      return videos();
    },
    queues: {
      archive: (job, delay) => sendJob(config.ARCHIVE_QUEUE_URL, job, delay),
      notify: (job, delay) => sendJob(config.NOTIFY_QUEUE_URL, job, delay),
    },
    callbackSecret: () => secretValue(config.CALLBACK_SECRET_ARN, config.CALLBACK_SECRET),
  };
}
