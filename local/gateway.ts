import { randomBytes } from 'node:crypto';
import { appendFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, TagResourceCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { hashKey, keyId } from '../lambdas/shared/api-keys';
import type { Catalog } from '../lambdas/shared/catalog';
import type { ConfigEnvironment } from '../lambdas/shared/config';
import { buildConsole } from '../lib/console-assets';
import { projectRoot } from '../lib/gateway-stack';
import { synthesizeTemplate } from '../lib/synthesize-template';
import { startDemoUpstreams, type DemoSimulators } from './demo-upstreams';
import { DataDirError, explainFsError, lockDataDir, makePrivateDir, readDataFile, readOrCreateDataFile, token, writeDataFile } from './data-dir';
import { startEmbeddedAws, stackDefinitions, localCredentials, type S3EventRecord } from './embedded-aws';
import { ENDPOINTS_FILE, INSTANCE_TAG, type LocalEndpoints } from './endpoints';
import { lambdaContext, startHttpAdapter, type HttpLambda } from './http-adapter';
import { startSchedule } from './schedule';
import { startSimulatedUpstream, type SimulatedUpstream, type SimulatedUpstreamOptions } from './simulated-upstream';
import { LOCAL_BUCKET, LOCAL_TABLE } from './names';
import { releaseDeadWorkersLeases } from './recovery';
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
  /**
   * Also run a simulator of every other dialect (OpenAI-compatible, Bedrock, fal, Replicate,
   * OpenRouter) and add one demo model routed to each (`local/demo-upstreams.ts`); for
   * `npm start` with no catalog of the operator's. Ignored when `env` sets UPSTREAMS or MODELS.
   */
  demo?: boolean;
  /** Configuration on top of the local defaults (the same variables as in AWS). */
  env?: ConfigEnvironment;
  /** Scales queue delays and visibility timeouts (0.01: a 30 s retry wait takes 300 ms); for tests. */
  queueTimeScale?: number;
  /** How often the reconciler runs; the stack's schedule says every minute. */
  reconcileEveryMs?: number;
  /**
   * A crash drill for the restart tests: the process kills itself (SIGKILL) the moment a
   * video is stored and its S3 event recorded, before the archive worker marks its task.
   */
  crashAfterVideoStored?: boolean;
  /** `own-process`: the embedded DynamoDB in a child process, off this one's CPU as in AWS (benchmarks). */
  dynamodb?: 'in-process' | 'own-process';
  log?: (msg: string, fields?: object) => void;
}

export interface LocalGateway {
  url: string;
  apiKey: string;
  webhookSecret: string;
  /**
   * What happened to the local key at this start: `replaced` when the kept one had been
   * revoked and a new one was made; `revoked` when the key given as `apiKey` is revoked
   * (requests with it answer 401).
   */
  localKey: { status: 'active' } | { status: 'replaced'; revokedId: string } | { status: 'revoked'; id: string };
  dataDir: string;
  upstream: SimulatedUpstream;
  /** The other dialects' simulators, with `demo`. */
  demo: DemoSimulators | undefined;
  /** The upstreams and models this gateway serves (what `npm start` prints). */
  catalog: Catalog;
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

/** `secrets.json`: the callback HMAC secret and the simulated upstream's key. Never short, never blank. */
const secretsSchema = z.object({
  callbackSecret: z.string().check(z.minLength(32), z.regex(/^[A-Za-z0-9_-]+$/)),
  upstreamKey: z.string().check(z.minLength(16), z.regex(/^\S+$/)),
});
const SECRETS_REMEDY =
  'Restore it, or delete it to have new secrets made at the next start (callbacks the upstream already holds then answer 401; those tasks finish by polling).';

/** `local-key.json`: the local API key and its webhook secret. */
const localKeySchema = z.object({
  apiKey: z.string().check(z.regex(/^vtg_\S{20,}$/)),
  webhookSecret: z.string().check(z.regex(/^whsec_\S{20,}$/)),
});
const LOCAL_KEY_REMEDY =
  'Delete it to have a new local key made at the next start (the old key stays valid until revoked: `npm run keys -- list`).';

const newLocalKey = () => ({
  apiKey: `vtg_local_${randomBytes(24).toString('base64url')}`,
  webhookSecret: `whsec_${randomBytes(32).toString('base64')}`,
});

/** Only set variables: `process.env.X = undefined` would store the string "undefined". */
function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
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
  makePrivateDir(dataDir);
  const lock = lockDataDir(dataDir, 'npm start');
  // Whatever started before a failure is stopped again, so a refused start leaves nothing running.
  const started: (() => Promise<void> | void)[] = [() => lock.release()];
  const stopStarted = async () => {
    for (const stop of started.reverse()) await stop();
  };
  try {
    return await startWithin(dataDir, host, log, options, started);
  } catch (error) {
    await stopStarted();
    throw error;
  }
}

async function startWithin(
  dataDir: string,
  host: string,
  log: (msg: string, fields?: object) => void,
  options: LocalGatewayOptions,
  started: (() => Promise<void> | void)[],
): Promise<LocalGateway> {
  const secrets = readOrCreateDataFile(join(dataDir, 'secrets.json'), secretsSchema, SECRETS_REMEDY, () => ({
    callbackSecret: randomBytes(32).toString('base64url'),
    upstreamKey: `sim_${randomBytes(16).toString('hex')}`,
  }));
  const localKeyFile = join(dataDir, 'local-key.json');
  let local = readOrCreateDataFile(localKeyFile, localKeySchema, LOCAL_KEY_REMEDY, newLocalKey);

  const definitions = stackDefinitions(synthesizeTemplate() as { Resources: Record<string, { Type: string }> });
  const aws = await startEmbeddedAws({ dataDir, tableName: LOCAL_TABLE, bucketName: LOCAL_BUCKET, definitions, host, log, dynamodb: options.dynamodb });
  started.push(() => aws.close());
  const eventsFile = join(dataDir, 's3-events.jsonl');
  const s3Events: S3EventRecord[] = [];
  aws.onS3Event((record) => {
    const key = record.s3.object.key;
    const { prefix, suffix } = definitions.videoEvents;
    if (!record.eventName.startsWith('ObjectCreated') || !key.startsWith(prefix) || !key.endsWith(suffix)) return;
    s3Events.push(record);
    try {
      appendFileSync(eventsFile, `${JSON.stringify({ Records: [record] })}\n`, { mode: 0o600 });
    } catch (error) {
      log('s3 event not recorded', { file: eventsFile, error: explainFsError(error, eventsFile, 'append to').message });
    }
    log('s3 event', { event: record.eventName, key, bytes: record.s3.object.size });
    if (options.crashAfterVideoStored) process.kill(process.pid, 'SIGKILL');
  });

  // Kept jobs resume once the gateway can take their callbacks: at the end of this start.
  let ready!: () => void;
  const resumeWhen = new Promise<void>((resolve) => (ready = resolve));
  const upstream = await startSimulatedUpstream({
    log: (msg, fields) => log(`upstream: ${msg}`, fields),
    ...options.upstream,
    host,
    apiKey: secrets.upstreamKey,
    renderMs: options.renderMs,
    persistIn: join(dataDir, 'upstreams'),
    resumeWhen,
  });
  started.push(() => upstream.close());

  const demo =
    options.demo && !options.env?.UPSTREAMS && !options.env?.MODELS
      ? await startDemoUpstreams({
          host,
          simulated: { name: 'simulated', url: upstream.url },
          apiKey: secrets.upstreamKey,
          renderMs: options.renderMs,
          s3Endpoint: aws.s3Endpoint,
          region: 'us-east-1',
          persistIn: join(dataDir, 'upstreams'),
          log,
        })
      : undefined;
  if (demo) started.push(() => demo.close());

  // Handlers are loaded once the environment below is complete; until then nothing calls them.
  let lambdas: Record<'submit' | 'query' | 'callback' | 'archive' | 'notify' | 'reconcile' | 'poll' | 'console', (event: any, context: any) => Promise<any>>;
  // Messages kept from the last run are delivered at once; their handlers wait for the end of
  // this start (handlers loaded, dead workers' leases handed back).
  const consumer =
    (name: 'archive' | 'notify' | 'poll') =>
    async (event: SQSEvent): Promise<SQSBatchResponse | void> => {
      await resumeWhen;
      return lambdas[name](event, lambdaContext(name, 900_000));
    };

  const sqs = await startLocalSqs({ host, dataDir: join(dataDir, 'queues'), log, timeScale: options.queueTimeScale });
  started.push(() => sqs.close());
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
  started.push(() => http.close());

  const consoleDir = join(dataDir, 'console');

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
    ...(demo ? { UPSTREAMS: JSON.stringify(demo.upstreams), MODELS: JSON.stringify(demo.models) } : {}),
    ...options.env,
  };
  Object.assign(process.env, definedOnly(env), {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    POWERTOOLS_METRICS_DISABLED: 'true',
    // The console, built as the stack builds it; its page plays videos from the embedded S3.
    CONSOLE_ASSETS_DIR: consoleDir,
    VIDEO_ORIGIN: aws.s3Endpoint,
  });
  // The whole configuration, catalog included, checked before a handler loads: a Lambda reads
  // its catalog only when first needed, and a bad entry must stop the start, named.
  const { config, parseConfig } = await import('../lambdas/shared/config');
  parseConfig(process.env);
  buildConsole(projectRoot, consoleDir, config().catalog.models);
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

  const keys = (await import('../lambdas/shared/parts')).keyStore(config());
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: aws.dynamodbEndpoint, region: 'us-east-1', credentials: localCredentials }),
  );
  started.push(() => db.destroy());

  const released = await releaseDeadWorkersLeases(db, LOCAL_TABLE);
  if (released.length) log('tasks held by workers of the last run handed back', { tasks: released });

  // The local key: from the option, else made once and kept, and registered each start. A
  // revoked key stays revoked: the kept one is replaced by a new one, a given one reported.
  let localKey: LocalGateway['localKey'] = { status: 'active' };
  let apiKey = options.apiKey ?? local.apiKey;
  await keys.ensure('local', apiKey, local.webhookSecret);
  let record = await keys.byHash(hashKey(apiKey));
  if (record?.revoked_at !== undefined) {
    if (options.apiKey !== undefined) localKey = { status: 'revoked', id: keyId(record.key_hash) };
    else {
      localKey = { status: 'replaced', revokedId: keyId(record.key_hash) };
      local = newLocalKey();
      writeDataFile(localKeyFile, local);
      apiKey = local.apiKey;
      await keys.ensure('local', apiKey, local.webhookSecret);
      record = await keys.byHash(hashKey(apiKey));
    }
  }
  // A key given as LOCAL_API_KEY may have been made with its own secret by `npm run keys`.
  const webhookSecret = record?.webhook_secret ?? local.webhookSecret;

  const schedule = startSchedule(
    () => lambdas.reconcile({}, lambdaContext('reconcile', 300_000)),
    options.reconcileEveryMs ?? 60_000,
    log,
  );
  started.push(() => schedule.stop());

  // `npm run keys` reaches this process's DynamoDB here: only one process can open dataDir/dynamodb.
  // The instance tag on the table lets it check that a port named here is still ours.
  const instance = token();
  const { Table } = await db.send(new DescribeTableCommand({ TableName: LOCAL_TABLE }));
  await db.send(new TagResourceCommand({ ResourceArn: Table!.TableArn!, Tags: [{ Key: INSTANCE_TAG, Value: instance }] }));
  const endpointsFile = join(dataDir, ENDPOINTS_FILE);
  const endpoints: LocalEndpoints = {
    pid: process.pid,
    instance,
    url: http.url,
    tableName: LOCAL_TABLE,
    bucketName: LOCAL_BUCKET,
    dynamodb: aws.dynamodbEndpoint,
    s3: aws.s3Endpoint,
    sqs: sqs.endpoint,
  };
  writeDataFile(endpointsFile, endpoints);
  started.push(() => rmSync(endpointsFile, { force: true }));
  ready();

  return {
    url: http.url,
    apiKey,
    webhookSecret,
    localKey,
    dataDir,
    upstream,
    demo: demo?.sims,
    catalog: config().catalog,
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
      await demo?.close();
      const { closeIdleConnections } = await import('../lambdas/shared/outbound');
      closeIdleConnections();
      db.destroy();
      await aws.close();
      started[0]!();
    },
  };
}
