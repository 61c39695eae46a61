import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CfnOutput, Duration, Stack, Stage, type CfnElement, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct, IConstruct } from 'constructs';
import type { ConfigEnvironment } from '../lambdas/shared/config';
import { configuredLambdaNames, defaultRouteLambda, lambdaNames, routes, type LambdaName } from '../lambdas/shared/routes';
import { buildConsole } from './console-assets';
import { GatewayFunction } from './gateway-function';
import { GatewayMonitoring } from './monitoring';
import { BedrockAccess, bedrockModelGrants } from './bedrock-access';
import { bundledKindDefines, kindsFor } from './bundled-kinds';
import { GatewayHttpApi } from './gateway-http-api';
import { GatewaySecrets, pascalName } from './gateway-secrets';
import { keyedUpstream, type StageConfig } from './stage-config';
import { GatewayStorage, inputKeyPrefix, videoKeyPrefix } from './storage';
import { WorkQueue } from './work-queue';

/** The repository root: `lambdas/`, `package.json` and `package-lock.json` live here. */
export const projectRoot = fileURLToPath(new URL('..', import.meta.url));

export interface GatewayStackProps extends StackProps {
  readonly config: StageConfig;
  /** Where the Lambda sources and the lock file are; defaults to this repository. */
  readonly projectRoot?: string;
}

interface FunctionSettings {
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly description: string;
}

/** Webhook jobs per notify invocation. */
const notifyBatchSize = 10;
/** Polls per poll invocation: each is one upstream GET of at most UPSTREAM_TIMEOUT_MS. */
const pollBatchSize = 5;

function functionSettings(config: StageConfig): Record<LambdaName, FunctionSettings> {
  // The slowest upstream sets how long one poll may take.
  const upstreamTimeoutMs = Math.max(config.upstreamTimeoutMs, ...config.catalog.upstreams.map((u) => u.timeoutMs ?? 0));
  return {
    // Calls the upstream (UPSTREAM_TIMEOUT_MS) inside the HTTP API's 30 s integration limit.
    submit: { timeout: Duration.seconds(29), memorySize: 512, description: 'records a task and submits it upstream' },
    // Presigning and one DynamoDB read; memory buys CPU for cold starts of the bundled SDK.
    query: { timeout: Duration.seconds(10), memorySize: 512, description: 'task views, listings, video redirects' },
    callback: { timeout: Duration.seconds(10), memorySize: 256, description: 'upstream completion callbacks' },
    // Streams videos of up to MAX_VIDEO_BYTES through multipart upload: the longest Lambda run there is.
    archive: { timeout: Duration.minutes(15), memorySize: 1024, description: 'copies finished videos into S3' },
    notify: {
      // The handler posts a batch's webhooks one after another: ten slow endpoints must not time
      // the whole batch out (and send its delivered webhooks round again), so at least 60 s.
      timeout: Duration.seconds(Math.max(60, Math.ceil((notifyBatchSize * config.webhookTimeoutMs) / 1000) + 30)),
      memorySize: 256,
      description: 'signed webhooks to clients',
    },
    // Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB: a run over a
    // backlog is CPU-bound (about 5 ms of SDK and gateway work per task), so at 512 MB 10,000 due
    // tasks would take about 3 minutes; at one vCPU, under the minute between runs. Idle runs are short.
    reconcile: { timeout: Duration.minutes(5), memorySize: 1769, description: 'resubmits, polls and expires tasks' },
    // A batch's polls run one after another: each may take the whole upstream timeout.
    poll: {
      timeout: Duration.seconds(Math.max(30, Math.ceil((pollBatchSize * upstreamTimeoutMs) / 1000) + 15)),
      memorySize: 256,
      description: 'polls upstreams that never call back',
    },
    // Serves three small files held in memory.
    console: { timeout: Duration.seconds(5), memorySize: 128, description: 'the operator console (static files)' },
  };
}

/** AWS's advice for a queue that feeds a Lambda: visibility timeout of six function timeouts. */
const visibilityFor = (settings: FunctionSettings) => Duration.seconds(6 * settings.timeout.toSeconds());

/** Receives of a notify job before it is dead-lettered; retries with backoff are re-sends, not receives. */
const notifyMaxReceiveCount = 10;
/** Receives of a poll job before it is dead-lettered: a failed upstream answer is a re-send, so only a failing gateway counts. */
const pollMaxReceiveCount = 5;

/** Lambda and API logs are kept this long. */
const logRetention = logs.RetentionDays.ONE_MONTH;

/**
 * The Video Task Gateway in AWS: an HTTP API in front of seven Lambdas, one DynamoDB table,
 * one S3 bucket whose new videos are announced on an SNS topic, three work queues and a
 * one-minute schedule. Each Lambda gets exactly the access listed in `grantAccess`.
 */
export class GatewayStack extends Stack {
  readonly storage: GatewayStorage;
  readonly secrets: GatewaySecrets;
  readonly archiveQueue: WorkQueue;
  readonly notifyQueue: WorkQueue;
  readonly pollQueue: WorkQueue;
  readonly httpApi: GatewayHttpApi;
  readonly functions: Record<LambdaName, GatewayFunction>;
  readonly monitoring: GatewayMonitoring;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: GatewayStackProps) {
    const { config, projectRoot: root = projectRoot, ...stackProps } = props;
    const settings = functionSettings(config);
    super(scope, id, {
      description: 'Video Task Gateway: asynchronous video generation with archived results',
      ...stackProps,
    });
    // Access-log delivery through a bucket policy instead of ACLs, which our buckets disable.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);

    this.storage = new GatewayStorage(this, 'Storage', {
      legacyOwnerIndex: config.legacyOwnerIndex,
      // A day beyond the deadline, after which no task is submitted again.
      inputRetention: Duration.days(Math.ceil(config.taskDeadlineSeconds / 86400) + 1),
    });
    // The single-upstream shorthand (no `upstreams` in the context) keeps its one secret as it was.
    const shorthand = config.upstreams === undefined;
    this.secrets = new GatewaySecrets(this, 'Secrets', {
      shorthand,
      keyedUpstreams: config.catalog.upstreams.filter(keyedUpstream).map((u) => ({
        name: u.name,
        existingSecretArn: shorthand ? config.upstreamKeySecretArn : config.upstreamSecretArns[u.name],
      })),
    });
    this.archiveQueue = new WorkQueue(this, 'ArchiveQueue', {
      visibilityTimeout: visibilityFor(settings.archive),
      // The handlers' own bound (ARCHIVE_MAX_ATTEMPTS): a job that keeps killing its Lambda
      // (timeout, out of memory) is not received more often than a job that keeps failing.
      maxReceiveCount: config.archiveMaxAttempts,
    });
    this.notifyQueue = new WorkQueue(this, 'NotifyQueue', {
      visibilityTimeout: visibilityFor(settings.notify),
      maxReceiveCount: notifyMaxReceiveCount,
    });
    this.pollQueue = new WorkQueue(this, 'PollQueue', {
      visibilityTimeout: visibilityFor(settings.poll),
      maxReceiveCount: pollMaxReceiveCount,
    });
    this.httpApi = new GatewayHttpApi(this, 'HttpApi', {
      throttle: { rateLimit: config.throttleRateLimit, burstLimit: config.throttleBurstLimit },
      logRetention,
    });

    // Every function parses the same schema (config.ts), so every function gets the same environment.
    const environment = {
      TABLE_NAME: this.storage.table.tableName,
      BUCKET_NAME: this.storage.bucket.bucketName,
      ARCHIVE_QUEUE_URL: this.archiveQueue.queue.queueUrl,
      NOTIFY_QUEUE_URL: this.notifyQueue.queue.queueUrl,
      POLL_QUEUE_URL: this.pollQueue.queue.queueUrl,
      PUBLIC_BASE_URL: this.httpApi.url,
      // The catalog as the stage config resolved it (no key is ever in it: the context refuses apiKey).
      UPSTREAMS: JSON.stringify(config.catalog.upstreams),
      ...(config.models === undefined ? {} : { MODELS: JSON.stringify(JSON.parse(config.models)) }),
      // ARNs only: the values are read from Secrets Manager at run time.
      UPSTREAM_SECRET_ARNS: this.toJsonString(Object.fromEntries([...this.secrets.upstreamKeys].map(([name, key]) => [name, key.secretArn]))),
      CALLBACK_SECRET_ARN: this.secrets.callbackSecret.secretArn,
      // The seed catalog's shorthand settings; empty whenever `models` is set (the stage config refuses both).
      MODEL_MAP: config.modelMap,
      DISABLED_MODELS: config.disabledModels,
      DEFAULT_LIMITS: config.defaultLimits,
      PRESIGN_TTL_SECONDS: String(config.presignTtlSeconds),
      TASK_DEADLINE_SECONDS: String(config.taskDeadlineSeconds),
      SILENT_AFTER_SECONDS: String(config.silentAfterSeconds),
      RESUBMIT_BASE_SECONDS: String(config.resubmitBaseSeconds),
      ARCHIVE_MAX_ATTEMPTS: String(config.archiveMaxAttempts),
      NOTIFY_RETRY_SECONDS: String(config.notifyRetrySeconds),
      TASK_RETENTION_DAYS: String(config.taskRetentionDays),
      MAX_VIDEO_BYTES: String(config.maxVideoBytes),
      UPSTREAM_TIMEOUT_MS: String(config.upstreamTimeoutMs),
      WEBHOOK_TIMEOUT_MS: String(config.webhookTimeoutMs),
      KEY_CACHE_SECONDS: String(config.keyCacheSeconds),
      POLL_FIRST_SECONDS: String(config.pollFirstSeconds),
      POLL_MAX_SECONDS: String(config.pollMaxSeconds),
      AMBIGUOUS_WAIT_SECONDS: String(config.ambiguousWaitSeconds),
      FIND_JOB_AFTER_SECONDS: String(config.findJobAfterSeconds),
      CIRCUIT_FAILURES: String(config.circuitFailures),
      CIRCUIT_COOL_DOWN_SECONDS: String(config.circuitCoolDownSeconds),
      DUE_SHARDS: String(config.dueShards),
    } satisfies ConfigEnvironment;
    checkEnvironmentSize(this, environment);
    // Each Lambda bundles the provider kinds its work may load, of those the stage configures (lib/bundled-kinds.ts).
    const configuredKinds = [...new Set(config.catalog.upstreams.map((u) => u.kind))];

    // The console serves files built here, beside its bundle; its page plays videos from the bucket.
    const consoleAssets = join(Stage.of(this)!.outdir, `${this.stackName}.console`);
    buildConsole(root, consoleAssets, config.catalog.models);
    const consoleEnvironment = { VIDEO_ORIGIN: `https://${this.storage.bucket.bucketRegionalDomainName}` };

    const functions = {} as Record<LambdaName, GatewayFunction>;
    for (const name of lambdaNames) {
      functions[name] = new GatewayFunction(this, `${capitalize(name)}Function`, {
        name,
        projectRoot: root,
        environment: name === 'console' ? consoleEnvironment : environment,
        define: bundledKindDefines(kindsFor(name, configuredKinds)),
        afterBundling: name === 'console' ? (outputDir) => [`cp -r "${consoleAssets}" "${outputDir}/console"`] : undefined,
        ...settings[name],
        description: `Video Task Gateway: ${settings[name].description}`,
        logRetention,
        // A failed reconcile run is not retried: the next one starts a minute later anyway.
        retryAttempts: name === 'reconcile' ? 0 : undefined,
      });
    }
    this.functions = functions;

    this.grantAccess();

    // Bedrock upstreams: the Lambdas that start and read invocations, and the archive that
    // moves what Bedrock wrote; nothing at all when no route goes to Bedrock.
    new BedrockAccess(this, 'BedrockAccess', {
      bucket: this.storage.bucket,
      models: bedrockModelGrants(config.catalog),
      callers: [functions.submit, functions.reconcile, functions.poll],
      archiver: functions.archive,
    });

    this.httpApi.addRoutes(routes, defaultRouteLambda, mapValues(functions, (f) => f.function));

    this.schedule = new events.Rule(this, 'ReconcileSchedule', {
      description: 'Video Task Gateway: run the reconciler every minute',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(functions.reconcile.function)],
    });

    this.monitoring = new GatewayMonitoring(this, 'Monitoring', {
      queues: [
        { name: 'Archive', queue: this.archiveQueue.queue, deadLetterQueue: this.archiveQueue.deadLetterQueue },
        { name: 'Notify', queue: this.notifyQueue.queue, deadLetterQueue: this.notifyQueue.deadLetterQueue },
        { name: 'Poll', queue: this.pollQueue.queue, deadLetterQueue: this.pollQueue.deadLetterQueue },
      ],
      api: this.httpApi.api,
      models: Object.keys(config.catalog.models),
      upstreams: config.catalog.upstreams.map((u) => u.name),
      failedRatioThreshold: config.failedRatioAlarm,
    });

    this.addOutputs();
  }

  /**
   * Least privilege, per function, from what each core function touches (lambdas/shared/core);
   * test/infra/iam.test.ts holds this list to account.
   */
  private grantAccess() {
    const { table, bucket } = this.storage;
    const { upstreamKeys, callbackSecret } = this.secrets;
    const upstreamKey = { grantRead: (fn: iam.IGrantable) => upstreamKeys.forEach((key) => key.grantRead(fn)) };
    const archiveQueue = this.archiveQueue.queue;
    const notifyQueue = this.notifyQueue.queue;
    const pollQueue = this.pollQueue.queue;
    const { submit, query, callback, archive, notify, reconcile, poll } = this.functions;
    // A presigned GET is only as good as its signer's s3:GetObject: task views carry one.
    const readVideos = new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [bucket.arnForObjects(`${videoKeyPrefix}*`)],
    });

    // submit: the task and its idempotency record; the upstream key; the callback token's
    // key; a task the upstream refuses is finished at once, so its webhook is queued; a task
    // at an upstream that never calls back starts its poll chain.
    table.grantReadWriteData(submit.function);
    upstreamKey.grantRead(submit.function);
    callbackSecret.grantRead(submit.function);
    notifyQueue.grantSendMessages(submit.function);
    pollQueue.grantSendMessages(submit.function);
    // submit also stores an uploaded reference image (and signs the upstream's GET of it),
    // and a client's delete removes the task's video.
    submit.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject'], resources: [bucket.arnForObjects(`${inputKeyPrefix}*`)] }),
    );
    submit.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [bucket.arnForObjects(`${videoKeyPrefix}*`)] }));

    // query: reads only; presigned URLs for task views and the /content redirect.
    table.grantReadData(query.function);
    query.role.addToPrincipalPolicy(readVideos);

    // callback: checks the token, moves the task on, queues the archive job, or the webhook of a
    // failed task; some dialects (fal) confirm a callback by asking the upstream, with its key.
    table.grantReadWriteData(callback.function);
    upstreamKey.grantRead(callback.function);
    callbackSecret.grantRead(callback.function);
    archiveQueue.grantSendMessages(callback.function);
    notifyQueue.grantSendMessages(callback.function);

    archive.function.addEventSource(
      // One video per invocation: each gets the whole timeout and its own retry count.
      new SqsEventSource(archiveQueue, { batchSize: 1, reportBatchItemFailures: true }),
    );
    table.grantReadWriteData(archive.function);
    // Authenticated content endpoints (the openai dialect's /videos/{id}/content) take the upstream's key.
    upstreamKey.grantRead(archive.function);
    // What @aws-sdk/lib-storage needs for a multipart upload (create/upload/complete are s3:PutObject).
    archive.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [bucket.arnForObjects(`${videoKeyPrefix}*`)],
      }),
    );
    // HeadObject (s3:GetObject): a retried attempt looks for the video an earlier one stored before fetching it again.
    archive.role.addToPrincipalPolicy(readVideos);
    // A failed copy re-queues its own next attempt with a backoff delay; a finished task queues its webhook.
    archiveQueue.grantSendMessages(archive.function);
    notifyQueue.grantSendMessages(archive.function);

    notify.function.addEventSource(
      new SqsEventSource(notifyQueue, { batchSize: notifyBatchSize, reportBatchItemFailures: true }),
    );
    // Reads the task and its API key item (the webhook secret), records each delivery attempt.
    table.grantReadWriteData(notify.function);
    // The webhook body is the task view, with a presigned video URL.
    notify.role.addToPrincipalPolicy(readVideos);
    // Backoff is a re-send with DelaySeconds, so a retry does not count as a receive.
    notifyQueue.grantSendMessages(notify.function);

    // reconcile: resubmits (upstream key, callback token), polls, fails expired tasks, re-sends lost jobs
    // (a poll-only task's lost poll chain among them).
    table.grantReadWriteData(reconcile.function);
    upstreamKey.grantRead(reconcile.function);
    callbackSecret.grantRead(reconcile.function);
    archiveQueue.grantSendMessages(reconcile.function);
    notifyQueue.grantSendMessages(reconcile.function);
    pollQueue.grantSendMessages(reconcile.function);
    // A resubmit signs a fresh GET of the task's uploaded reference image for the upstream.
    reconcile.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects(`${inputKeyPrefix}*`)] }));

    poll.function.addEventSource(
      new SqsEventSource(pollQueue, { batchSize: pollBatchSize, reportBatchItemFailures: true }),
    );
    // poll: asks the upstream (its key), moves the task on as a callback would (archive job,
    // or the webhook of a failed task), and queues the task's next poll with a longer delay.
    table.grantReadWriteData(poll.function);
    upstreamKey.grantRead(poll.function);
    archiveQueue.grantSendMessages(poll.function);
    notifyQueue.grantSendMessages(poll.function);
    pollQueue.grantSendMessages(poll.function);

    this.acknowledgeWildcards();
  }

  /** IAM5 findings for resources that can only be named with a wildcard; see test/infra/iam.test.ts. */
  private acknowledgeWildcards() {
    const xray = {
      resource: '*',
      reason: 'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.',
    };
    const indexes = {
      resource: `${this.arnOf(this.storage.table)}/index/*`,
      reason: "CDK's table grants cover the table's own indexes (byOwner, byDue) as <table>/index/*; no other table.",
    };
    const videos = (use: string) => ({
      resource: `${this.arnOf(this.storage.bucket)}/${videoKeyPrefix}*`,
      reason: `${use}: video objects are named by task id, so they can only be granted by their prefix ${videoKeyPrefix}.`,
    });
    for (const name of configuredLambdaNames) this.functions[name].acknowledgeWildcards([xray, indexes]);
    this.functions.console.acknowledgeWildcards([xray]);
    this.functions.query.acknowledgeWildcards([videos('Presigned GETs for task views and /content redirects')]);
    this.functions.notify.acknowledgeWildcards([videos('Presigned GETs in webhook bodies')]);
    this.functions.archive.acknowledgeWildcards([videos('Multipart uploads of archived videos')]);
    const inputs = (use: string) => ({
      resource: `${this.arnOf(this.storage.bucket)}/${inputKeyPrefix}*`,
      reason: `${use}: reference images uploaded with a create are named when they arrive, so they can only be granted by their prefix ${inputKeyPrefix}.`,
    });
    this.functions.submit.acknowledgeWildcards([videos('DELETE of a task removes its video'), inputs('Stored at a create, presigned GETs for the upstream')]);
    this.functions.reconcile.acknowledgeWildcards([inputs('Presigned GETs for the upstream at a resubmit')]);
  }

  /** A resource's ARN as cdk-nag writes it in finding ids: `<LogicalId.Arn>`. */
  private arnOf(construct: IConstruct): string {
    return `<${this.getLogicalId(construct.node.defaultChild as CfnElement)}.Arn>`;
  }

  private addOutputs() {
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output('ApiUrl', this.httpApi.url, 'Base URL of the gateway API (clients and upstream callbacks)');
    output('BucketName', this.storage.bucket.bucketName, `Archived videos, at ${videoKeyPrefix}{id}.mp4`);
    output('TableName', this.storage.table.tableName, 'Tasks, API key hashes and idempotency records');
    output('VideoEventsTopicArn', this.storage.videoEvents.topicArn, 'Subscribe here to hear about each archived video');
    output('AlarmTopicArn', this.monitoring.alarmTopic.topicArn, 'Subscribe here (e.g. an email address) to hear of every alarm');
    output('DashboardName', this.monitoring.dashboard.dashboardName, 'The CloudWatch dashboard of this gateway');
    for (const [name, key] of this.secrets.upstreamKeys)
      output(
        upstreamKeyOutputName(this.secrets.shorthand ? undefined : name),
        key.secretArn,
        `Set the API key of upstream ${name}: aws secretsmanager put-secret-value --secret-id <this ARN> --secret-string <key>`,
      );
    output('CallbackSecretArn', this.secrets.callbackSecret.secretArn, 'HMAC key of the upstream callback tokens');
    output('ArchiveQueueUrl', this.archiveQueue.queue.queueUrl, 'Archive jobs');
    output('ArchiveDeadLetterQueueUrl', this.archiveQueue.deadLetterQueue.queueUrl, 'Archive jobs that ran out of attempts');
    output('NotifyQueueUrl', this.notifyQueue.queue.queueUrl, 'Webhook jobs');
    output('NotifyDeadLetterQueueUrl', this.notifyQueue.deadLetterQueue.queueUrl, 'Webhook jobs that kept failing');
    output('PollQueueUrl', this.pollQueue.queue.queueUrl, 'Polls of upstreams that never call back');
    output('PollDeadLetterQueueUrl', this.pollQueue.deadLetterQueue.queueUrl, 'Poll jobs the gateway kept failing on');
  }
}

/** `UpstreamKeySecretArn` for the shorthand's one upstream, `UpstreamKeyResellerASecretArn` for `reseller-a`. */
export const upstreamKeyOutputName = (name?: string) => `UpstreamKey${name === undefined ? '' : pascalName(name)}SecretArn`;

/** Lambda holds 4 KB of environment per function, names and values together; a large catalog must fail at synth, not at deploy. */
const environmentLimitBytes = 4096;
/** What a deploy-time value (an ARN, a queue URL) may take once resolved. */
const tokenBytes = 128;

/** Bytes of a resolved CloudFormation value: literal strings as they are, each reference as `tokenBytes`. */
function resolvedBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + resolvedBytes(v), 0);
  if (value && typeof value === 'object') {
    const join = (value as Record<string, unknown>)['Fn::Join'] as [string, unknown[]] | undefined;
    if (join) return resolvedBytes(join[1]) + Buffer.byteLength(join[0]) * Math.max(0, join[1].length - 1);
    return tokenBytes;
  }
  return Buffer.byteLength(String(value));
}

function checkEnvironmentSize(stack: Stack, environment: Record<string, string>) {
  let bytes = 0;
  for (const [name, value] of Object.entries(environment)) bytes += Buffer.byteLength(name) + resolvedBytes(stack.resolve(value));
  if (bytes > environmentLimitBytes)
    throw new Error(
      `the Lambdas' environment would take about ${bytes} bytes, beyond Lambda's ${environmentLimitBytes}: ` +
        `UPSTREAMS and MODELS take ${Buffer.byteLength((environment.UPSTREAMS ?? '') + (environment.MODELS ?? ''))}; shorten the catalog (fewer models, or leave out fields that keep their defaults)`,
    );
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function mapValues<K extends string, A, B>(record: Record<K, A>, f: (a: A) => B): Record<K, B> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v as A)])) as Record<K, B>;
}
