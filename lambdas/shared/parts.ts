import { ApiKeyStore } from './api-keys';
import { dynamo } from './aws/dynamo';
import { secretValue } from './aws/secrets';
import { sendJob } from './aws/sqs';
import { CircuitBreaker } from './circuit-breaker';
import type { Config } from './config';
import type { Gateway } from './core/deps';
import { IdempotencyStore } from './idempotency';
import { TaskStore } from './task-store';
import { UsageStore } from './usage';

/**
 * The gateway's collaborators that only need DynamoDB, SQS and the secrets, built from
 * configuration. Parts that pull in heavier clients (S3 links, the archiver, the upstream)
 * have factories of their own, so each Lambda bundles and loads only what its work uses.
 */
export const taskStore = (c: Config) => new TaskStore(dynamo(), c.TABLE_NAME, undefined, c.DUE_SHARDS);
export const keyStore = (c: Config) => new ApiKeyStore(dynamo(), c.TABLE_NAME, c.KEY_CACHE_SECONDS * 1000);
export const usageStore = (c: Config) => new UsageStore(dynamo(), c.TABLE_NAME);
export const idempotencyStore = (c: Config) => new IdempotencyStore(dynamo(), c.TABLE_NAME);

/** The upstreams' circuits, shared by every Lambda through the table; `readCacheMs` for a Lambda that calls them in bulk. */
export const circuits = (c: Config, options: { readCacheMs?: number } = {}) =>
  new CircuitBreaker(dynamo(), c.TABLE_NAME, {
    failureThreshold: c.CIRCUIT_FAILURES,
    coolDownMs: c.CIRCUIT_COOL_DOWN_SECONDS * 1000,
    // A probe's call may take the whole upstream timeout.
    probeLeaseMs: c.UPSTREAM_TIMEOUT_MS + 5_000,
    ...options,
  });

export const queues = (c: Config): Gateway['queues'] => ({
  archive: (job, delay) => sendJob(c.ARCHIVE_QUEUE_URL, job, delay),
  notify: (job, delay) => sendJob(c.NOTIFY_QUEUE_URL, job, delay),
  poll: (job, delay) => sendJob(c.POLL_QUEUE_URL, job, delay),
});

export const callbackSecret = (c: Config) => () => secretValue(c.CALLBACK_SECRET_ARN, c.CALLBACK_SECRET);
