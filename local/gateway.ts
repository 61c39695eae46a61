import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { ConfigEnvironment } from '../lambdas/shared/config';
import { buildConsole } from '../lib/console-assets';
import { projectRoot } from '../lib/gateway-stack';
import { synthesizeTemplate } from '../lib/synthesize-template';
import { startEmbeddedAws, stackDefinitions, localCredentials, type S3EventRecord } from './embedded-aws';
import { lambdaContext, startHttpAdapter, type HttpLambda } from './http-adapter';
import { startSchedule } from './schedule';
import { startSimulatedUpstream, type SimulatedUpstream, type SimulatedUpstreamOptions } from './simulated-upstream';
import { LOCAL_BUCKET, LOCAL_TABLE } from './names';
import { startLocalSqs, type LocalSqs } from './sqs';

export interface LocalGatewayOptions {
  /** Where tables, objects, secrets, the local key and the S3 event log persist. */
  dataDir: string;
  /** Port of the API; 0 picks a free one. */
  port?: number;
  host?: string;
  /** The local API key; when absent one is generated once and kept in `dataDir`. */
  apiKey?: string;
  /** How long the simulated upstream takes to render a video. */
  renderMs?: number;
  /** More settings for the simulated upstream (faults, failure shares). */
  upstream?: Omit<SimulatedUpstreamOptions, 'apiKey' | 'renderMs' | 'host' | 'port'>;
  /** Configuration on top of the local defaults (the same variables as in AWS). */
  env?: ConfigEnvironment;
  /** Scales queue delays and visibility timeouts (0.01: a 30 s retry wait takes 300 ms); for tests. */
  queueTimeScale?: number;
  /** How often the reconciler runs; the stack's schedule says every minute. */
  reconcileEveryMs?: number;
  log?: (msg: string, fields?: object) => void;
}

export interface LocalGateway {
  url: string;
  apiKey: string;
  webhookSecret: string;
  dataDir: string;
  upstream: SimulatedUpstream;
  sqs: LocalSqs;
  tableName: string;
  bucketName: string;
  endpoints: { dynamodb: string; s3: string; sqs: string };
  /** S3 ObjectCreated notifications seen in this run (they are also appended to `s3-events.jsonl`). */
  s3Events: S3EventRecord[];
  /** Register another API key (as `npm run keys -- create` does); returns the key. */
  createKey(name: string, options?: { admin?: boolean }): Promise<string>;
  reconcileNow(): Promise<void>;
  stop(): Promise<void>;
}

interface LocalSecrets {
  callbackSecret: string;
  upstreamKey: string;
}

function readOrCreate<T>(file: string, make: () => T): T {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as T;
  const value = make();
  writeFileSync(file, JSON.stringify(value, null, 2), { mode: 0o600 });
  return value;
}


/**
 * The whole gateway on one machine: the unchanged Lambda handlers behind a local API
 * Gateway, embedded DynamoDB and S3, local SQS queues with the stack's retry settings, the
 * reconcile schedule, and the simulated upstream on loopback.
 *
 * Handlers read their configuration from the environment once, so one process holds one
 * local gateway at a time.
 */
export async function startLocalGateway(options: LocalGatewayOptions): Promise<LocalGateway> {
  // The pinned SDK supports Node 20; its notice about later releases is not the user's concern here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = options.log ?? (() => undefined);
  const host = options.host ?? '127.0.0.1';
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const secrets = readOrCreate<LocalSecrets>(join(dataDir, 'secrets.json'), () => ({
    callbackSecret: randomBytes(32).toString('base64url'),
    upstreamKey: `sim_${randomBytes(16).toString('hex')}`,
  }));

  const definitions = stackDefinitions(synthesizeTemplate() as { Resources: Record<string, { Type: string }> });
  const aws = await startEmbeddedAws({ dataDir, tableName: LOCAL_TABLE, bucketName: LOCAL_BUCKET, definitions, host });
  const eventsFile = join(dataDir, 's3-events.jsonl');
  const s3Events: S3EventRecord[] = [];
  aws.onS3Event((record) => {
    const key = record.s3.object.key;
    const { prefix, suffix } = definitions.videoEvents;
    if (!record.eventName.startsWith('ObjectCreated') || !key.startsWith(prefix) || !key.endsWith(suffix)) return;
    s3Events.push(record);
    appendFileSync(eventsFile, `${JSON.stringify({ Records: [record] })}\n`);
    log('s3 event', { event: record.eventName, key, bytes: record.s3.object.size });
  });

  const upstream = await startSimulatedUpstream({
    ...options.upstream,
    host,
    apiKey: secrets.upstreamKey,
    renderMs: options.renderMs,
  });

  // Handlers are loaded once the environment below is complete; until then nothing calls them.
  let lambdas: Record<'submit' | 'query' | 'callback' | 'archive' | 'notify' | 'reconcile' | 'poll' | 'console', (event: any, context: any) => Promise<any>>;
  const consumer =
    (name: 'archive' | 'notify' | 'poll') =>
    (event: SQSEvent): Promise<SQSBatchResponse | void> =>
      lambdas[name](event, lambdaContext(name, 900_000));

  const sqs = await startLocalSqs({ host, dataDir: join(dataDir, 'queues'), log, timeScale: options.queueTimeScale });
  const archiveQueue = sqs.createQueue('archive', {
    ...definitions.queues.archive,
    deadLetterQueue: 'archive-dlq',
    batchSize: 1,
    consumer: consumer('archive'),
  });
  const notifyQueue = sqs.createQueue('notify', {
    ...definitions.queues.notify,
    deadLetterQueue: 'notify-dlq',
    batchSize: 10,
    consumer: consumer('notify'),
  });
  const pollQueue = sqs.createQueue('poll', {
    ...definitions.queues.poll,
    deadLetterQueue: 'poll-dlq',
    batchSize: 5,
    consumer: consumer('poll'),
  });

  const http = await startHttpAdapter({
    host,
    port: options.port ?? 0,
    log,
    lambdas: {
      submit: (e, c) => lambdas.submit(e, c),
      query: (e, c) => lambdas.query(e, c),
      callback: (e, c) => lambdas.callback(e, c),
      console: (e, c) => lambdas.console(e, c),
    } satisfies Record<string, HttpLambda>,
  });

  const consoleDir = join(dataDir, 'console');
  buildConsole(projectRoot, consoleDir);

  const env: ConfigEnvironment = {
    TABLE_NAME: LOCAL_TABLE,
    BUCKET_NAME: LOCAL_BUCKET,
    ARCHIVE_QUEUE_URL: archiveQueue,
    NOTIFY_QUEUE_URL: notifyQueue,
    POLL_QUEUE_URL: pollQueue,
    PUBLIC_BASE_URL: http.url,
    UPSTREAM_PROVIDER: 'simulated',
    UPSTREAM_BASE_URL: upstream.url,
    UPSTREAM_KEY: secrets.upstreamKey,
    CALLBACK_SECRET: secrets.callbackSecret,
    LOCAL_MODE: 'true',
    DYNAMODB_ENDPOINT: aws.dynamodbEndpoint,
    S3_ENDPOINT: aws.s3Endpoint,
    SQS_ENDPOINT: sqs.endpoint,
    ...options.env,
  };
  Object.assign(process.env, env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: 'true',
    // The console, built as the stack builds it; its page plays videos from the embedded S3.
    CONSOLE_ASSETS_DIR: consoleDir,
    VIDEO_ORIGIN: aws.s3Endpoint,
  });
  lambdas = {
    submit: (await import('../lambdas/submit/handler')).handler,
    query: (await import('../lambdas/query/handler')).handler,
    callback: (await import('../lambdas/callback/handler')).handler,
    archive: (await import('../lambdas/archive/handler')).handler,
    notify: (await import('../lambdas/notify/handler')).handler,
    reconcile: (await import('../lambdas/reconcile/handler')).handler,
    poll: (await import('../lambdas/poll/handler')).handler,
    console: (await import('../lambdas/console/handler')).handler,
  };

  // The local key: from the option, else made once and kept, and (re)registered each start.
  const local = readOrCreate(join(dataDir, 'local-key.json'), () => ({
    apiKey: `vtg_local_${randomBytes(24).toString('base64url')}`,
    webhookSecret: `whsec_${randomBytes(32).toString('base64')}`,
  }));
  const apiKey = options.apiKey ?? local.apiKey;
  const { config } = await import('../lambdas/shared/config');
  const keys = (await import('../lambdas/shared/parts')).keyStore(config());
  await keys.ensure('local', apiKey, local.webhookSecret);

  const schedule = startSchedule(
    () => lambdas.reconcile({}, lambdaContext('reconcile', 300_000)),
    options.reconcileEveryMs ?? 60_000,
    log,
  );

  // `npm run keys` reaches this process's DynamoDB here: only one process can open dataDir/dynamodb.
  const endpointsFile = join(dataDir, 'endpoints.json');
  writeFileSync(
    endpointsFile,
    JSON.stringify(
      { pid: process.pid, url: http.url, tableName: LOCAL_TABLE, bucketName: LOCAL_BUCKET, dynamodb: aws.dynamodbEndpoint, s3: aws.s3Endpoint, sqs: sqs.endpoint },
      null,
      2,
    ),
    { mode: 0o600 },
  );

  return {
    url: http.url,
    apiKey,
    webhookSecret: local.webhookSecret,
    dataDir,
    upstream,
    sqs,
    tableName: LOCAL_TABLE,
    bucketName: LOCAL_BUCKET,
    endpoints: { dynamodb: aws.dynamodbEndpoint, s3: aws.s3Endpoint, sqs: sqs.endpoint },
    s3Events,
    createKey: async (name, options) => (await keys.create(name, undefined, undefined, options)).key,
    reconcileNow: () => schedule.runNow(),
    async stop() {
      rmSync(endpointsFile, { force: true });
      await schedule.stop();
      await http.close();
      await sqs.close();
      await upstream.close();
      const { closeIdleConnections } = await import('../lambdas/shared/outbound');
      closeIdleConnections();
      await aws.close();
    },
  };
}
