import { Match } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambdas/shared/config';
import { defaultRouteLambda, configuredLambdaNames, lambdaNames, routeKey, routes, type LambdaName } from '../../lambdas/shared/routes';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { videoKey } from '../../lambdas/shared/video-links';
import { accessLogFields } from '../../lib/gateway-http-api';
import { videoKeyPrefix, videoKeySuffix } from '../../lib/storage';
import { deployTimeEnvironment, onlyResourceOfType, render, resourcesOfType, synthesizeGateway, type Synthesized } from './support';

let s: Synthesized;
beforeAll(() => {
  s = synthesizeGateway();
});

const tlsOnly = (resource: unknown, principal: unknown = { AWS: '*' }) =>
  Match.objectLike({
    Effect: 'Deny',
    Principal: principal,
    Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    ...(resource === undefined ? {} : { Resource: resource }),
  });

describe('task table', () => {
  it('has the key design of lambdas/shared/table-schema.ts and nothing else', () => {
    s.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: tableSchema.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: Match.arrayEquals([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'owner', AttributeType: 'S' },
        { AttributeName: 'id', AttributeType: 'S' },
        { AttributeName: 'open', AttributeType: 'S' },
        { AttributeName: 'due_at', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byOwnerKeys',
          KeySchema: [
            { AttributeName: 'owner', KeyType: 'HASH' },
            { AttributeName: 'id', KeyType: 'RANGE' },
          ],
          // Only keys: a task's updates never touch them, so its owner's index item is written once.
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        {
          IndexName: 'byDue',
          KeySchema: [
            { AttributeName: 'open', KeyType: 'HASH' },
            { AttributeName: 'due_at', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
  });

  it('keeps the all-attribute byOwner index beside it for the first deploy of an upgrade, one index change per update', () => {
    const indexes = (synthesized: Synthesized) => {
      const [, table] = resourcesOfType(synthesized.json, 'AWS::DynamoDB::Table')[0]!;
      return (table.Properties!.GlobalSecondaryIndexes as { IndexName: string; Projection: { ProjectionType: string } }[]).map(
        (i) => `${i.IndexName} ${i.Projection.ProjectionType}`,
      );
    };
    const upgrading = indexes(synthesizeGateway({ legacyOwnerIndex: 'true' }));
    expect(upgrading).toEqual(['byOwnerKeys KEYS_ONLY', 'byOwner ALL', 'byDue ALL']);
    // From the stack that had only byOwner, the first deploy adds one index; the next removes one.
    expect(upgrading.filter((i) => !indexes(s).includes(i))).toEqual(['byOwner ALL']);
  });

  it('bills per request, keeps point-in-time backups, expires items on expires_at and survives the stack', () => {
    s.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      }),
    });
  });
});

describe('video bucket', () => {
  const videoBucket = () => s.id(s.stack.storage.bucket);
  const logsBucket = () => s.id(s.stack.storage.accessLogsBucket);

  it('is private, encrypted, retained, and logs its access to the separate logs bucket', () => {
    s.template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LoggingConfiguration: { DestinationBucketName: { Ref: logsBucket() }, LogFilePrefix: 'video-bucket/' },
      }),
    });
    expect(s.json.Resources[videoBucket()]!.Properties!.LoggingConfiguration).toBeDefined();
  });

  it('aborts incomplete multipart uploads after one day', () => {
    const rules = s.json.Resources[videoBucket()]!.Properties!.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }),
    );
  });

  it('deletes uploaded reference images a day after the last moment a task can be submitted (TASK_DEADLINE_SECONDS, 2 h)', () => {
    const rules = s.json.Resources[videoBucket()]!.Properties!.LifecycleConfiguration.Rules;
    expect(rules).toContainEqual({ Id: 'expire-uploaded-inputs', Prefix: 'inputs/', ExpirationInDays: 2, Status: 'Enabled' });
  });

  it('refuses requests without TLS, on both buckets', () => {
    for (const bucket of [videoBucket(), logsBucket()]) {
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: bucket },
        PolicyDocument: {
          Statement: Match.arrayWith([
            tlsOnly([{ 'Fn::GetAtt': [bucket, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/*']] }]),
          ]),
        },
      });
    }
  });

  it('S3 may deliver the video bucket’s access logs into the logs bucket, under its prefix only', () => {
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsBucket() },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 's3:PutObject',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logsBucket(), 'Arn'] }, '/video-bucket/*']] },
            Condition: Match.objectLike({ ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [videoBucket(), 'Arn'] } } }),
          }),
        ]),
      },
    });
  });

  it('the logs bucket is private and encrypted too', () => {
    const props = s.json.Resources[logsBucket()]!.Properties!;
    expect(props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe(
      'AES256',
    );
    expect(Object.values(props.PublicAccessBlockConfiguration)).toEqual([true, true, true, true]);
  });

  it('announces each new videos/*.mp4 object on the topic, and only those', () => {
    const notifications = onlyResourceOfType(s.json, 'Custom::S3BucketNotifications');
    expect(notifications.Properties.BucketName).toEqual({ Ref: videoBucket() });
    const { TopicConfigurations, QueueConfigurations, LambdaFunctionConfigurations } =
      notifications.Properties.NotificationConfiguration;
    expect([QueueConfigurations, LambdaFunctionConfigurations]).toEqual([undefined, undefined]);
    expect(TopicConfigurations).toHaveLength(1);
    const [topic] = TopicConfigurations;
    expect(topic.Events).toEqual(['s3:ObjectCreated:*']);
    expect(topic.TopicArn).toEqual({ Ref: s.id(s.stack.storage.videoEvents) });
    const rules = topic.Filter.Key.FilterRules as { Name: string; Value: string }[];
    expect(Object.fromEntries(rules.map((r) => [r.Name, r.Value]))).toEqual({ prefix: 'videos/', suffix: '.mp4' });
  });

  it('the filter matches the keys the archive Lambda writes', () => {
    const key = videoKey('vid_01hzy3example');
    expect(key.startsWith(videoKeyPrefix) && key.endsWith(videoKeySuffix)).toBe(true);
  });

  it('the topic takes S3 publishes from this bucket only, and refuses requests without TLS', () => {
    const topic = s.id(s.stack.storage.videoEvents);
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          tlsOnly({ Ref: topic }, '*'),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 's3.amazonaws.com' },
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [videoBucket(), 'Arn'] } } },
          }),
        ]),
      },
    });
  });
});

describe('work queues', () => {
  const queueProps = (queue: IConstruct) => s.json.Resources[s.id(queue)]!.Properties!;

  it('the archive queue hides a message for six archive timeouts and dead-letters it after ARCHIVE_MAX_ATTEMPTS receives', () => {
    const archive = queueProps(s.stack.archiveQueue.queue);
    const archiveTimeout = s.json.Resources[s.functionIds.archive]!.Properties!.Timeout as number;
    expect(archiveTimeout).toBe(900);
    expect(archive.VisibilityTimeout).toBeGreaterThanOrEqual(6 * archiveTimeout);
    expect(archive.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [s.id(s.stack.archiveQueue.deadLetterQueue), 'Arn'] },
      maxReceiveCount: 5,
    });
  });

  it('the notify queue dead-letters after 10 receives', () => {
    const notify = queueProps(s.stack.notifyQueue.queue);
    const notifyTimeout = s.json.Resources[s.functionIds.notify]!.Properties!.Timeout as number;
    expect(notify.VisibilityTimeout).toBeGreaterThanOrEqual(6 * notifyTimeout);
    expect(notify.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [s.id(s.stack.notifyQueue.deadLetterQueue), 'Arn'] },
      maxReceiveCount: 10,
    });
  });

  it('the poll queue hides a message for six poll timeouts and dead-letters it after 5 receives', () => {
    const poll = queueProps(s.stack.pollQueue.queue);
    const pollTimeout = s.json.Resources[s.functionIds.poll]!.Properties!.Timeout as number;
    expect(poll.VisibilityTimeout).toBeGreaterThanOrEqual(6 * pollTimeout);
    expect(poll.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [s.id(s.stack.pollQueue.deadLetterQueue), 'Arn'] },
      maxReceiveCount: 5,
    });
    // A poll delay is an SQS DelaySeconds: the stage refuses a ceiling SQS cannot wait.
    expect(() => synthesizeGateway({ pollMaxSeconds: 901 })).toThrow(/pollMaxSeconds/);
  });

  it('all six queues are SQS-encrypted and TLS-only', () => {
    const queues = resourcesOfType(s.json, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(6);
    for (const [id, queue] of queues) {
      expect(queue.Properties!.SqsManagedSseEnabled).toBe(true);
      s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: { Statement: Match.arrayWith([tlsOnly({ 'Fn::GetAtt': [id, 'Arn'] })]) },
      });
    }
  });

  it('ARCHIVE_MAX_ATTEMPTS from the stage config reaches both the redrive policy and the functions', () => {
    const other = synthesizeGateway({ archiveMaxAttempts: 7 });
    const archive = other.json.Resources[other.id(other.stack.archiveQueue.queue)]!.Properties!;
    expect(archive.RedrivePolicy.maxReceiveCount).toBe(7);
    for (const name of configuredLambdaNames)
      expect(other.json.Resources[other.functionIds[name]]!.Properties!.Environment.Variables.ARCHIVE_MAX_ATTEMPTS).toBe('7');
  });
});

describe('secrets', () => {
  it('the stack generates the callback HMAC key and creates a placeholder for the upstream key', () => {
    s.template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    s.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('callback'),
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
    s.template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('put-secret-value'),
    });
    // The single-upstream shorthand's secret keeps the path (so the logical id) it had before
    // the catalog: an upgraded stack keeps the key its operator put there.
    expect(s.stack.secrets.upstreamKeys.get('duomi')!.node.path).toBe('VideoTaskGateway/Secrets/UpstreamKey');
  });

  it('an existing upstream key secret is used as given, and not created', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:duomi-key-AbC123';
    const other = synthesizeGateway({ upstreamKeySecretArn: arn });
    other.template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    for (const name of configuredLambdaNames)
      expect(other.json.Resources[other.functionIds[name]]!.Properties!.Environment.Variables.UPSTREAM_SECRET_ARNS).toBe(JSON.stringify({ duomi: arn }));
    other.template.hasOutput('UpstreamKeySecretArn', { Value: arn });
    other.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['secretsmanager:GetSecretValue']), Resource: arn }),
        ]),
      },
    });
  });
});

describe('functions', () => {
  const props = (name: LambdaName) => s.json.Resources[s.functionIds[name]]!.Properties!;
  const expectedEnvironment = [
    'TABLE_NAME',
    'BUCKET_NAME',
    'ARCHIVE_QUEUE_URL',
    'NOTIFY_QUEUE_URL',
    'POLL_QUEUE_URL',
    'PUBLIC_BASE_URL',
    'UPSTREAMS',
    'UPSTREAM_SECRET_ARNS',
    'CALLBACK_SECRET_ARN',
    'MODEL_MAP',
    'DISABLED_MODELS',
    'DEFAULT_LIMITS',
    'PRESIGN_TTL_SECONDS',
    'TASK_DEADLINE_SECONDS',
    'SILENT_AFTER_SECONDS',
    'RESUBMIT_BASE_SECONDS',
    'ARCHIVE_MAX_ATTEMPTS',
    'NOTIFY_RETRY_SECONDS',
    'TASK_RETENTION_DAYS',
    'MAX_VIDEO_BYTES',
    'UPSTREAM_TIMEOUT_MS',
    'WEBHOOK_TIMEOUT_MS',
    'KEY_CACHE_SECONDS',
    'POLL_FIRST_SECONDS',
    'POLL_MAX_SECONDS',
    'AMBIGUOUS_WAIT_SECONDS',
    'FIND_JOB_AFTER_SECONDS',
    'CIRCUIT_FAILURES',
    'CIRCUIT_COOL_DOWN_SECONDS',
    'DUE_SHARDS',
    'NODE_OPTIONS',
  ];

  it('one per entry file, on nodejs22.x / arm64 with X-Ray tracing', () => {
    // The eighth is CDK's own bucket-notifications custom resource.
    const ours = resourcesOfType(s.json, 'AWS::Lambda::Function').filter(([id]) => !id.startsWith('BucketNotifications'));
    expect(ours.map(([id]) => id).sort()).toEqual(Object.values(s.functionIds).sort());
    for (const name of lambdaNames) {
      expect(props(name)).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it('timeouts and memory fit each job', () => {
    const sizes = Object.fromEntries(lambdaNames.map((n) => [n, [props(n).Timeout, props(n).MemorySize]]));
    expect(sizes).toEqual({
      submit: [29, 512],
      query: [10, 512],
      callback: [10, 256],
      archive: [900, 1024],
      notify: [130, 256],
      reconcile: [300, 1769],
      poll: [90, 256],
      console: [5, 128],
    });
  });

  it('the notify Lambda outlasts a batch of ten webhooks that each run to WEBHOOK_TIMEOUT_MS', () => {
    const other = synthesizeGateway({ webhookTimeoutMs: 3000 });
    expect(other.json.Resources[other.functionIds.notify]!.Properties!.Timeout).toBe(60);
    const timeout = props('notify').Timeout as number;
    const webhookSeconds = Number(props('notify').Environment.Variables.WEBHOOK_TIMEOUT_MS) / 1000;
    expect(timeout).toBeGreaterThan(10 * webhookSeconds);
  });

  it('each logs to its own log group, kept for a month', () => {
    for (const name of lambdaNames) {
      const logGroup = s.id(s.stack.functions[name].logGroup);
      expect(props(name).LoggingConfig).toEqual({ LogGroup: { Ref: logGroup } });
      expect(s.json.Resources[logGroup]!.Properties!.RetentionInDays).toBe(30);
    }
  });

  it('every Lambda of the gateway gets the same environment: every configuration variable that applies in AWS', () => {
    const first = props('submit').Environment.Variables;
    expect(Object.keys(first).sort()).toEqual([...expectedEnvironment].sort());
    for (const name of configuredLambdaNames) expect(props(name).Environment.Variables).toEqual(first);
    // The console serves files: it knows only where its page may play videos from.
    expect(Object.keys(props('console').Environment.Variables).sort()).toEqual(['NODE_OPTIONS', 'VIDEO_ORIGIN']);
    expect(first).toMatchObject({
      // The single-upstream shorthand, as one named upstream.
      UPSTREAMS: '[{"name":"duomi","kind":"duomi","baseUrl":"https://duomiapi.com"}]',
      MODEL_MAP: '{}',
      DISABLED_MODELS: '',
      DEFAULT_LIMITS: '{}',
      ARCHIVE_MAX_ATTEMPTS: '5',
      NODE_OPTIONS: '--enable-source-maps',
      TABLE_NAME: { Ref: s.id(s.stack.storage.table) },
      BUCKET_NAME: { Ref: s.id(s.stack.storage.bucket) },
      ARCHIVE_QUEUE_URL: { Ref: s.id(s.stack.archiveQueue.queue) },
      NOTIFY_QUEUE_URL: { Ref: s.id(s.stack.notifyQueue.queue) },
      POLL_QUEUE_URL: { Ref: s.id(s.stack.pollQueue.queue) },
    });
  });

  it('the environment passes the handlers’ own config schema', () => {
    const variables = props('submit').Environment.Variables as Record<string, unknown>;
    const config = parseConfig(deployTimeEnvironment(variables));
    expect(config).toMatchObject({ LOCAL_MODE: false, ARCHIVE_MAX_ATTEMPTS: 5 });
    expect(config.catalog.upstreams).toEqual([{ name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com' }]);
    expect(Object.keys(config.catalog.models)).toEqual(['sora-2', 'sora-2-pro', 'sora-2-temporary']);
    expect(Object.keys(config.UPSTREAM_SECRET_ARNS)).toEqual(['duomi']);
    expect(config.UPSTREAM_KEY).toBeUndefined();
    expect(config.CALLBACK_SECRET).toBeUndefined();
  });

  it('secrets reach the functions as ARNs only, never as values', () => {
    const variables = props('submit').Environment.Variables as Record<string, unknown>;
    expect(variables).not.toHaveProperty('UPSTREAM_KEY');
    expect(variables).not.toHaveProperty('CALLBACK_SECRET');
    expect(s.stack.resolve(variables.UPSTREAM_SECRET_ARNS)).toEqual({
      'Fn::Join': ['', ['{"duomi":"', { Ref: s.id(s.stack.secrets.upstreamKeys.get('duomi')!) }, '"}']],
    });
    expect(variables.CALLBACK_SECRET_ARN).toEqual({ Ref: s.id(s.stack.secrets.callbackSecret) });
    const functions = JSON.stringify(lambdaNames.map((n) => props(n)));
    expect(functions).not.toMatch(/resolve:secretsmanager|SecretString|GetSecretValue/);
  });

  it('PUBLIC_BASE_URL is the HTTP API’s own endpoint, the one the ApiUrl output shows', () => {
    const url = props('callback').Environment.Variables.PUBLIC_BASE_URL;
    expect(url).toEqual({ 'Fn::GetAtt': [s.id(s.stack.httpApi.api), 'ApiEndpoint'] });
    expect(s.json.Outputs.ApiUrl!.Value).toEqual(url);
  });

  it('a catalog too large for Lambda’s 4 KB environment stops synthesis, saying so', () => {
    const upstreams = [{ name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1' }];
    const models = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`model-${i}`, { durations: [5, 10], routes: [{ upstream: 'reseller-a', model: `upstream-model-${i}` }] }]),
    );
    expect(() => synthesizeGateway({ upstreams, models })).toThrow(/the Lambdas' environment would take about \d+ bytes, beyond Lambda's 4096: UPSTREAMS and MODELS take \d+/);
    expect(() => synthesizeGateway({ upstreams, models: Object.fromEntries(Object.entries(models).slice(0, 10)) })).not.toThrow();
  });

  it('stage settings reach the environment', () => {
    const other = synthesizeGateway({
      upstreamBaseUrl: 'https://upstream.example/api',
      modelMap: { 'sora-2': 'sora-2-hd' },
      disabledModels: ['sora-2-temporary'],
      presignTtlSeconds: 600,
      maxVideoBytes: 1024,
    });
    expect(other.json.Resources[other.functionIds.query]!.Properties!.Environment.Variables).toMatchObject({
      UPSTREAMS: '[{"name":"duomi","kind":"duomi","baseUrl":"https://upstream.example/api"}]',
      MODEL_MAP: '{"sora-2":"sora-2-hd"}',
      DISABLED_MODELS: 'sora-2-temporary',
      PRESIGN_TTL_SECONDS: '600',
      MAX_VIDEO_BYTES: '1024',
    });
  });
});

describe('queue consumers', () => {
  it('archive takes one job at a time and reports failures per message', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: s.functionIds.archive },
      EventSourceArn: { 'Fn::GetAtt': [s.id(s.stack.archiveQueue.queue), 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('notify takes up to ten jobs and reports failures per message', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: s.functionIds.notify },
      EventSourceArn: { 'Fn::GetAtt': [s.id(s.stack.notifyQueue.queue), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('poll takes up to five jobs and reports failures per message; its timeout covers five upstream calls', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: s.functionIds.poll },
      EventSourceArn: { 'Fn::GetAtt': [s.id(s.stack.pollQueue.queue), 'Arn'] },
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const timeout = s.json.Resources[s.functionIds.poll]!.Properties!.Timeout as number;
    const upstreamSeconds = Number(s.json.Resources[s.functionIds.poll]!.Properties!.Environment.Variables.UPSTREAM_TIMEOUT_MS) / 1000;
    expect(timeout).toBeGreaterThan(5 * upstreamSeconds);
    s.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
  });
});

describe('HTTP API', () => {
  it('has exactly the routes of lambdas/shared/routes.ts, plus $default', () => {
    const routeKeys = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties!.RouteKey);
    expect(routeKeys.sort()).toEqual([...routes.map(routeKey), '$default'].sort());
  });

  it('serves the OpenAI Videos dialect and the seed dialect\'s delete and cancel', () => {
    const routeKeys = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties!.RouteKey);
    expect(routeKeys).toEqual(
      expect.arrayContaining([
        'POST /v1/videos',
        'GET /v1/videos',
        'GET /v1/videos/{id}',
        'GET /v1/videos/{id}/content',
        'DELETE /v1/videos/{id}',
        'DELETE /v1/videos/generations/{id}',
        'POST /v1/videos/generations/{id}/cancel',
      ]),
    );
  });

  it('sends each route to the Lambda the table names', () => {
    const integrationTarget = (target: unknown) => {
      const integrationId = render(target).replace(/^integrations\/<(.+)>$/, '$1');
      const integration = s.json.Resources[integrationId]!.Properties!;
      expect(integration).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
      return render(integration.IntegrationUri);
    };
    const expected = new Map([
      ...routes.map((r) => [routeKey(r), r.lambda] as const),
      ['$default', defaultRouteLambda] as const,
    ]);
    for (const [, route] of resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route')) {
      const lambda = expected.get(route.Properties!.RouteKey)!;
      expect(integrationTarget(route.Properties!.Target)).toBe(`<${s.functionIds[lambda]}.Arn>`);
      expect(route.Properties!.AuthorizationType).toBe('NONE');
    }
  });

  it('has no CORS configuration', () => {
    const api = onlyResourceOfType(s.json, 'AWS::ApiGatewayV2::Api');
    expect(api.Properties).toMatchObject({ ProtocolType: 'HTTP' });
    expect(api.Properties.CorsConfiguration).toBeUndefined();
  });

  it('the $default stage throttles and writes JSON access logs', () => {
    s.template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    const stage = onlyResourceOfType(s.json, 'AWS::ApiGatewayV2::Stage');
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [s.id(s.stack.httpApi.accessLogs), 'Arn'] } },
    });
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format);
    expect(format).toEqual(accessLogFields);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      routeKey: '$context.routeKey',
      status: '$context.status',
      latency: '$context.responseLatency',
    });
    expect(s.json.Resources[s.id(s.stack.httpApi.accessLogs)]!.Properties!.RetentionInDays).toBe(30);
  });

  it('throttling comes from the stage config', () => {
    const other = synthesizeGateway({ throttleRateLimit: 5, throttleBurstLimit: 20 });
    other.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 20 },
    });
  });
});

describe('reconcile schedule', () => {
  it('invokes the reconcile Lambda every minute, without retrying a failed run', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [s.functionIds.reconcile, 'Arn'] } })],
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [s.functionIds.reconcile, 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: s.functionIds.reconcile },
      MaximumRetryAttempts: 0,
    });
  });
});

describe('outputs', () => {
  it('name what an operator needs after a deploy', () => {
    expect(s.json.Outputs.BucketName!.Value).toEqual({ Ref: s.id(s.stack.storage.bucket) });
    expect(s.json.Outputs.TableName!.Value).toEqual({ Ref: s.id(s.stack.storage.table) });
    expect(s.json.Outputs.VideoEventsTopicArn!.Value).toEqual({ Ref: s.id(s.stack.storage.videoEvents) });
    expect(s.json.Outputs.UpstreamKeySecretArn!.Value).toEqual({ Ref: s.id(s.stack.secrets.upstreamKeys.get('duomi')!) });
    expect(s.json.Outputs.ArchiveQueueUrl!.Value).toEqual({ Ref: s.id(s.stack.archiveQueue.queue) });
    expect(s.json.Outputs.NotifyQueueUrl!.Value).toEqual({ Ref: s.id(s.stack.notifyQueue.queue) });
    expect(s.json.Outputs.PollQueueUrl!.Value).toEqual({ Ref: s.id(s.stack.pollQueue.queue) });
    expect(s.json.Outputs.PollDeadLetterQueueUrl!.Value).toEqual({ Ref: s.id(s.stack.pollQueue.deadLetterQueue) });
    expect(Object.keys(s.json.Outputs)).toEqual(
      expect.arrayContaining(['ApiUrl', 'BucketName', 'TableName', 'VideoEventsTopicArn', 'UpstreamKeySecretArn']),
    );
  });
});
