import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type BatchGetCommandInput,
  type GetCommandInput,
  type PutCommandInput,
  type QueryCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { S3Client } from '@aws-sdk/client-s3';
import { CircuitBreaker } from '../../lambdas/shared/circuit-breaker';
import { INPUT_LINK_SECONDS, InputImages } from '../../lambdas/shared/input-images';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi, type Mock } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

import { ApiKeyStore, hashKey } from '../../lambdas/shared/api-keys';
import { callbackToken, callbackUrl, verifyCallbackToken } from '../../lambdas/shared/callback-token';
import { parseConfig, type Config } from '../../lambdas/shared/config';
import { submitBodySchema, type TaskRecord } from '../../lambdas/shared/contracts';
import { archiveTask } from '../../lambdas/shared/core/archive';
import { cancelTask } from '../../lambdas/shared/core/cancel';
import { applyUpstreamStatus, handleCallback } from '../../lambdas/shared/core/callback';
import type { Gateway } from '../../lambdas/shared/core/deps';
import { notifyTask } from '../../lambdas/shared/core/notify';
import { queryTasks } from '../../lambdas/shared/core/query';
import { reconcile } from '../../lambdas/shared/core/reconcile';
import { SUBMIT_RESOLVE_TIMEOUT_MS, submitTask, submitUpstream } from '../../lambdas/shared/core/submit';
import { ApiError, errorResult, type HttpEvent, type HttpResult } from '../../lambdas/shared/http';
import type { Resolver } from '../../lambdas/shared/outbound';
import { fingerprint, IdempotencyStore } from '../../lambdas/shared/idempotency';
import { isTaskId, newTaskId } from '../../lambdas/shared/ids';
import { DuomiProvider, duomiBody } from '../../lambdas/shared/providers/duomi';
import { UpstreamError, type UpstreamProvider } from '../../lambdas/shared/providers/provider';
import { ARCHIVE_LEASE_MS, TaskStore, type Clock, type VideoFacts } from '../../lambdas/shared/task-store';
import { UsageStore } from '../../lambdas/shared/usage';
import type { VideoStore } from '../../lambdas/shared/videos';
import { taskRecord } from '../fixtures/task';

// ---- a DynamoDB table in a Map, behind aws-sdk-client-mock ------------------------------

const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
const table = new Map<string, Record<string, any>>();

const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
const copy = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

/** Evaluates the conditions the gateway's stores write (state lists, progress, lease, notify status). */
function conditionHolds(item: Record<string, any> | undefined, input: UpdateCommandInput): boolean {
  const condition = input.ConditionExpression;
  if (!condition) return true;
  const values = input.ExpressionAttributeValues ?? {};
  if (condition.includes('attribute_exists(pk)') && !item) return false;
  if (!item) return true;
  const from = Object.entries(values)
    .filter(([k]) => k.startsWith(':from'))
    .map(([, v]) => v);
  if (from.length && !from.includes(item.state)) return false;
  if (condition.includes('#progress <= :progress') && item.progress !== undefined && !(item.progress <= values[':progress'])) return false;
  if (condition.includes('#lease < :now') && item.archive_lease_until !== undefined && !(item.archive_lease_until < values[':now'])) return false;
  if (condition.includes('#lease = :lease') && item.archive_lease_until !== values[':lease']) return false;
  if (condition.includes('#slease < :now') && item.submit_lease_until !== undefined && !(item.submit_lease_until < values[':now'])) return false;
  if (condition.includes('#due <= :now') && !(item.due_at <= values[':now'])) return false;
  if (condition.includes('#slease = :held') && item.submit_lease_until !== values[':held']) return false;
  if (condition.includes('#notify = :pending') && item.notify_status !== values[':pending']) return false;
  return true;
}

/** Applies the SET / if_not_exists / list_append / REMOVE parts as TaskStore names them. */
function applyUpdate(item: Record<string, any>, input: UpdateCommandInput) {
  const names = input.ExpressionAttributeNames ?? {};
  const values = input.ExpressionAttributeValues ?? {};
  for (const [placeholder, attribute] of Object.entries(names)) {
    const kind = placeholder.slice(1, 2);
    const n = placeholder.slice(2);
    if (placeholder === '#append') item[attribute] = [...(item[attribute] ?? []), ...values[':append']];
    else if (kind === 's' && /^\d+$/.test(n)) item[attribute] = copy(values[`:s${n}`]);
    else if (kind === 'm' && /^\d+$/.test(n)) item[attribute] ??= copy(values[`:m${n}`]);
    else if (kind === 'r' && /^\d+$/.test(n)) delete item[attribute];
  }
  const plain = /^SET (\w+) = (:\w+)$/.exec(input.UpdateExpression ?? '');
  if (plain) item[plain[1]!] = copy(values[plain[2]!]);
}

function installTable() {
  ddb.on(GetCommand).callsFake(async (input: GetCommandInput) => ({ Item: copy(table.get(String(input.Key!.pk))) }));
  ddb.on(PutCommand).callsFake(async (input: PutCommandInput) => {
    const pk = String(input.Item!.pk);
    const existing = table.get(pk);
    if (input.ConditionExpression && existing) {
      const expired =
        input.ConditionExpression.includes('expires_at < :now') && existing.expires_at < input.ExpressionAttributeValues![':now'];
      if (!expired) throw conditionFailed();
    }
    table.set(pk, copy(input.Item!));
    return {};
  });
  ddb.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => {
    const pk = String(input.Key!.pk);
    const item = table.get(pk);
    if (!conditionHolds(item, input)) throw conditionFailed();
    const next = copy(item) ?? { pk };
    applyUpdate(next, input);
    table.set(pk, next);
    return { Attributes: copy(next) };
  });
  ddb.on(QueryCommand).callsFake(async (input: QueryCommandInput) => {
    const v = input.ExpressionAttributeValues ?? {};
    let items = [...table.values()].filter((i) => String(i.pk).startsWith('TASK#'));
    if (input.IndexName === tableSchema.byOwner.indexName) {
      items = items.filter((i) => i.owner === v[':o'] && (v[':after'] === undefined || i.id < v[':after']));
      items.sort((a, b) => (a.id < b.id ? -1 : 1));
      if (input.ScanIndexForward === false) items.reverse();
      // The owner index holds only the keys.
      items = items.map((i) => ({ pk: i.pk, owner: i.owner, id: i.id }));
    } else {
      items = items.filter((i) => i.open === v[':open'] && i.due_at <= v[':now']).sort((a, b) => a.due_at - b.due_at);
    }
    return { Items: copy(items.slice(0, input.Limit ?? items.length)) };
  });
  ddb.on(BatchGetCommand).callsFake(async (input: BatchGetCommandInput) => {
    const [[name, { Keys = [] }]] = Object.entries(input.RequestItems!) as [[string, { Keys?: Record<string, unknown>[] }]];
    return { Responses: { [name]: copy(Keys.flatMap((k) => table.get(String(k.pk)) ?? [])) } };
  });
  ddb.on(ScanCommand).resolves({ Items: [] });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'msg-1' });
}

const taskItem = (id: string) => table.get(`TASK#${id}`) as TaskRecord | undefined;
const tasksWritten = () => ddb.commandCalls(PutCommand).filter((c) => String(c.args[0].input.Item?.pk).startsWith('TASK#'));

// ---- the gateway around it --------------------------------------------------------------

const API_KEY = 'vtg_unit_test_key';
const OTHER_KEY = 'vtg_other_test_key';
const OWNER = hashKey(API_KEY);
const WEBHOOK_SECRET = `whsec_${Buffer.from('unit-webhook-secret-0123456789ab').toString('base64')}`;
const CALLBACK_SECRET = 'unit-callback-secret';

const baseEnv = {
  TABLE_NAME: 'vtg-unit',
  BUCKET_NAME: 'vtg-unit-videos',
  ARCHIVE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/vtg-archive',
  NOTIFY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/vtg-notify',
  POLL_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/vtg-poll',
  PUBLIC_BASE_URL: 'https://api.example.com',
  UPSTREAM_BASE_URL: 'https://upstream.example.com',
  UPSTREAM_KEY: 'sk-upstream',
  CALLBACK_SECRET,
  MODEL_MAP: '{"sora-2-pro":"sora-2-pro-hd"}',
  DISABLED_MODELS: 'sora-2-temporary',
};

/** What every host name resolves to unless a test says otherwise (no real DNS in tests). */
const PUBLIC_ADDRESS = '93.184.215.14';

class FakeClock implements Clock {
  t = Date.now();
  now() {
    return this.t;
  }
}

function putKey(key: string, name: string) {
  const hash = hashKey(key);
  table.set(`KEY#${hash}`, { pk: `KEY#${hash}`, key_hash: hash, name, webhook_secret: WEBHOOK_SECRET, created_at: 1 });
}

type Queues = Gateway['queues'];

interface Harness extends Gateway {
  resolve: Mock<Resolver>;
  provider: UpstreamProvider & { submit: Mock<UpstreamProvider['submit']>; status: Mock<UpstreamProvider['status']> };
  queues: { archive: Mock<Queues['archive']>; notify: Mock<Queues['notify']>; poll: Mock<Queues['poll']> };
  archiver: VideoStore & { archive: Mock<VideoStore['archive']>; findStored: Mock<VideoStore['findStored']>; copy: Mock<VideoStore['copy']> };
  clock: FakeClock;
}

const duomi = new DuomiProvider({ baseUrl: 'http://upstream.invalid', apiKey: async () => 'k', timeoutMs: 100 });

/** A gateway on `baseEnv` with `env` over it; a name set to undefined is left unset. */
function gateway(env: Record<string, string | undefined> = {}): Harness {
  const config: Config = parseConfig(Object.fromEntries(Object.entries({ ...baseEnv, ...env }).filter(([, v]) => v !== undefined)));
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const clock = new FakeClock();
  const provider = {
    name: 'fake',
    kind: 'duomi' as const,
    callsBack: true,
    submit: vi.fn<UpstreamProvider['submit']>(async () => ({ upstreamId: 'up-1' })),
    status: vi.fn<UpstreamProvider['status']>(async () => duomi.parseStatus({ state: 'running', progress: 10 })),
    parseCallback: duomi.parseCallback.bind(duomi),
  };
  const videos = {
    presign: async (key: string) => ({ url: `https://vtg-unit-videos.s3.amazonaws.com/${key}?X-Amz-Signature=abc`, expiresAt: 1_900_000_000 }),
  } as unknown as Harness['videos'];
  const archiver = {
    archive: vi.fn<VideoStore['archive']>(async (_source, key): Promise<VideoFacts> => ({ key, bytes: 2048, sha256: 'ab'.repeat(32), contentType: 'video/mp4' })),
    findStored: vi.fn<VideoStore['findStored']>(async () => undefined),
    copy: vi.fn<VideoStore['copy']>(async (_source, key): Promise<VideoFacts> => ({ key, bytes: 4096, sha256: 'ef'.repeat(32), contentType: 'video/mp4' })),
  } as unknown as Harness['archiver'];
  // Real presigned links (signing needs no network); nothing here stores an image.
  const inputs = new InputImages(new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: 'unit-secret' } }), 'vtg-unit-videos');
  return {
    config,
    clock,
    inputs,
    store: new TaskStore(db, config.TABLE_NAME, clock),
    keys: new ApiKeyStore(db, config.TABLE_NAME, 0),
    usage: new UsageStore(db, config.TABLE_NAME),
    idempotency: new IdempotencyStore(db, config.TABLE_NAME),
    provider,
    circuits: new CircuitBreaker(db, config.TABLE_NAME, { failureThreshold: 5, coolDownMs: 60_000, probeLeaseMs: 20_000 }, clock),
    upstreams: { get: async () => provider },
    videos,
    archiver,
    queues: {
      archive: vi.fn<Queues['archive']>(async () => undefined),
      notify: vi.fn<Queues['notify']>(async () => undefined),
      poll: vi.fn<Queues['poll']>(async () => undefined),
    },
    callbackSecret: async () => CALLBACK_SECRET,
    resolve: vi.fn<Resolver>(async () => [{ address: PUBLIC_ADDRESS, family: 4 }]),
  };
}

// ---- events and answers -----------------------------------------------------------------

function httpEvent(e: {
  route: string;
  path?: string;
  headers?: Record<string, string>;
  body?: unknown;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
}): HttpEvent {
  const [method, template] = e.route.split(' ') as [string, string];
  const path = e.path ?? template;
  return {
    version: '2.0',
    routeKey: e.route,
    rawPath: path,
    rawQueryString: new URLSearchParams(e.query ?? {}).toString(),
    headers: e.headers ?? {},
    queryStringParameters: e.query,
    pathParameters: e.pathParameters,
    requestContext: {
      accountId: '123456789012',
      apiId: 'unit',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.17', userAgent: 'unit' },
      requestId: 'req',
      routeKey: e.route,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
    body: e.body === undefined ? undefined : typeof e.body === 'string' ? e.body : JSON.stringify(e.body),
    isBase64Encoded: false,
  };
}

const seedBody = {
  model: 'sora-2',
  prompt: 'The car moves forward at a high speed',
  aspect_ratio: '16:9',
  duration: 15,
  image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
};

const submitEvent = (body: unknown = seedBody, headers: Record<string, string> = {}) =>
  httpEvent({
    route: 'POST /v1/videos/generations',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...headers },
    body,
  });

const callbackEvent = (id: string, body: unknown, token = callbackToken(CALLBACK_SECRET, id)) =>
  httpEvent({
    route: 'POST /callbacks/upstream/{id}',
    path: `/callbacks/upstream/${id}`,
    pathParameters: { id },
    query: token === '' ? undefined : { token },
    headers: { 'content-type': 'application/json' },
    body,
  });

const getEvent = (route: string, id?: string, headers: Record<string, string> = { authorization: API_KEY }, query?: Record<string, string>) =>
  httpEvent({ route, path: id ? route.split(' ')[1]!.replace('{id}', id) : undefined, pathParameters: id ? { id } : undefined, headers, query });

/** What the client receives: the core's answer, or its ApiError as the handlers' middleware renders it. */
async function respond(answer: Promise<HttpResult>): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  let result: HttpResult;
  try {
    result = await answer;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    result = errorResult(error);
  }
  return { status: result.statusCode ?? 200, headers: { ...result.headers }, body: result.body ? JSON.parse(result.body) : undefined };
}

/** A task of the test key, as submit would have written it. */
function seedTask(g: Harness, overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = g.clock.now();
  const task = taskRecord(now, {
    owner: OWNER,
    state: 'submitted',
    submit_attempts: 1,
    upstream_id: 'up-1',
    due_at: now + 300_000,
    ...overrides,
  });
  table.set(`TASK#${task.id}`, { pk: `TASK#${task.id}`, ...structuredClone(task) });
  return task;
}

const succeededBody = (upstreamId = 'up-1') => ({
  id: upstreamId,
  state: 'succeeded',
  progress: 100,
  data: { videos: [{ url: 'https://cdn.duomi.example/videos/up-1.mp4' }] },
  message: '',
});

beforeEach(() => {
  ddb.reset();
  sqs.reset();
  table.clear();
  installTable();
  putKey(API_KEY, 'unit');
  putKey(OTHER_KEY, 'other');
});

// ---- submit -----------------------------------------------------------------------------

describe('submitting a task', () => {
  it('without an Authorization header is 401 and writes nothing', async () => {
    const g = gateway();
    const answer = await respond(submitTask(submitEvent(seedBody, { authorization: '' }), g));
    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: { code: 'unauthorized', type: 'authentication_error', message: 'send your API key in the Authorization header' } });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(g.provider.submit).not.toHaveBeenCalled();
  });

  it('with an unknown key is 401 and writes nothing', async () => {
    const g = gateway();
    const answer = await respond(submitTask(submitEvent(seedBody, { authorization: 'Bearer vtg_nobody' }), g));
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'unknown or revoked API key' } } });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('accepts the key with or without "Bearer"', async () => {
    const g = gateway();
    expect((await respond(submitTask(submitEvent(seedBody, { authorization: API_KEY }), g))).status).toBe(200);
    expect((await respond(submitTask(submitEvent(seedBody, { Authorization: `bearer ${API_KEY}` }), g))).status).toBe(200);
  });

  it('with a bad body is 400 naming the field, and writes nothing', async () => {
    const g = gateway();
    const answer = await respond(submitTask(submitEvent({ model: 'sora-2', duration: 25, prompt: 'x' }), g));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: { code: 'invalid_request', type: 'invalid_request_error', message: 'duration 25 is only available with sora-2-pro (sora-2 takes 10 or 15)', param: 'duration' } });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(g.provider.submit).not.toHaveBeenCalled();
  });

  it('with a body that is not JSON is 415 or 400, and writes nothing', async () => {
    const g = gateway();
    expect((await respond(submitTask(submitEvent(seedBody, { 'content-type': 'text/plain' }), g))).body).toEqual({
      error: { code: 'unsupported_media_type', type: 'invalid_request_error', message: 'send the request body as application/json' },
    });
    expect((await respond(submitTask(submitEvent('{"model":'), g))).body).toEqual({
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'request body is not valid JSON' },
    });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('for a model the operator disabled is 400 on model', async () => {
    const answer = await respond(submitTask(submitEvent({ ...seedBody, model: 'sora-2-temporary' }), gateway()));
    expect(answer).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_request', type: 'invalid_request_error', message: 'model sora-2-temporary is not available on this gateway', param: 'model' } },
    });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  describe('with URLs whose host names resolve to private addresses', () => {
    /** A resolver from a table of names; every other name is public. */
    const names = (table: Record<string, string>): Resolver => async (host) => [{ address: table[host] ?? PUBLIC_ADDRESS, family: table[host]?.includes(':') ? 6 : 4 }];

    it.each([
      ['image_urls[0]', { image_urls: ['https://127.0.0.1.nip.io/ref.jpg'] }, '127.0.0.1.nip.io', '127.0.0.1', 'loopback'],
      ['characters[1].url', { characters: [{ url: 'https://cdn.example.com/a.mp4', timestamps: '0,3' }, { url: 'https://internal-media/b.mp4', timestamps: '0,3' }] }, 'internal-media', '10.0.4.2', 'private'],
      ['callback_url', { callback_url: 'https://metadata.google.internal/computeMetadata/v1/' }, 'metadata.google.internal', '169.254.169.254', 'link-local'],
      ['callback_url', { callback_url: 'https://hooks.localtest.me/v' }, 'hooks.localtest.me', '::1', 'loopback'],
    ])('is 400 on %s, and nothing is written or sent', async (param, fields, host, address, kind) => {
      const g = gateway();
      g.resolve.mockImplementation(names({ [host]: address }));
      const answer = await respond(submitTask(submitEvent({ ...seedBody, image_urls: [], ...fields }), g));
      expect(answer).toMatchObject({ status: 400 });
      expect(answer.body).toEqual({
        error: { code: 'invalid_request', type: 'invalid_request_error', param, message: `${param}: ${host} resolves to ${address}, which is not a public address (${kind})` },
      });
      expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
      expect(g.provider.submit).not.toHaveBeenCalled();
    });

    it('resolves every host at once, and a slow name passes after the short timeout', async () => {
      const g = gateway();
      g.resolve.mockImplementation((host) =>
        host === 'slow.example' ? new Promise(() => undefined) : new Promise((r) => setTimeout(() => r([{ address: PUBLIC_ADDRESS, family: 4 }]), 300)),
      );
      const t0 = performance.now();
      const answer = await respond(
        submitTask(
          submitEvent({
            ...seedBody,
            image_urls: ['https://a.example/1.jpg'],
            characters: [{ url: 'https://b.example/c.mp4', timestamps: '0,3' }],
            callback_url: 'https://slow.example/hook',
          }),
          g,
        ),
      );
      const elapsed = performance.now() - t0;
      expect(answer.status).toBe(200);
      expect(g.resolve.mock.calls.map(([host]) => host).sort()).toEqual(['a.example', 'b.example', 'slow.example']);
      expect(elapsed).toBeGreaterThanOrEqual(SUBMIT_RESOLVE_TIMEOUT_MS - 20);
      expect(elapsed).toBeLessThan(SUBMIT_RESOLVE_TIMEOUT_MS + 600);
    });

    it('a name that does not resolve passes (DNS trouble is no verdict; the webhook is checked again when sent)', async () => {
      const g = gateway();
      g.resolve.mockRejectedValue(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
      expect((await respond(submitTask(submitEvent({ ...seedBody, callback_url: 'https://gone.example/hook' }), g))).status).toBe(200);
    });

    it('in local mode a name on loopback is fine, a private one is not', async () => {
      const g = gateway({ LOCAL_MODE: 'true' });
      g.resolve.mockImplementation(names({ 'hooks.localtest.me': '127.0.0.1', 'nas.lan': '192.168.1.20' }));
      expect((await respond(submitTask(submitEvent({ ...seedBody, callback_url: 'http://hooks.localtest.me:8080/v' }), g))).status).toBe(200);
      const answer = await respond(submitTask(submitEvent({ ...seedBody, callback_url: 'http://nas.lan/v' }), g));
      expect(answer).toMatchObject({ status: 400, body: { error: { param: 'callback_url' } } });
    });
  });

  it('with a callback_url on a private address is 400 on callback_url', async () => {
    const answer = await respond(submitTask(submitEvent({ ...seedBody, callback_url: 'http://169.254.169.254/latest/meta-data' }), gateway()));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'invalid_request', param: 'callback_url' });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('that the upstream accepts answers 200 {id} and records the upstream id', async () => {
    const g = gateway();
    g.provider.submit.mockResolvedValueOnce({ upstreamId: 'up-777' });
    const answer = await respond(submitTask(submitEvent(), g));
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body)).toEqual(['id']);
    expect(isTaskId(answer.body.id)).toBe(true);
    expect(answer.headers).not.toHaveProperty('deprecation');
    const updates = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    const onTask = updates.filter((u) => String(u.Key!.pk).startsWith('TASK#'));
    expect(onTask).toHaveLength(1);
    expect(Object.values(onTask[0]!.ExpressionAttributeValues!)).toEqual(expect.arrayContaining(['submitted', 'up-777', 'queued']));
    // Its seconds reserved in the key's day and month, with no limits to check.
    expect(updates.filter((u) => String(u.Key!.pk).startsWith(`USAGE#${OWNER}#`)).map((u) => u.Key!.pk)).toHaveLength(2);
    expect(taskItem(answer.body.id)).toMatchObject({ state: 'submitted', upstream_id: 'up-777', owner: OWNER, duration: 15, usage_status: 'reserved' });
  });

  it('sends the upstream the request with our callback URL and the upstream’s model name', async () => {
    const g = gateway();
    const answer = await respond(submitTask(submitEvent({ ...seedBody, model: 'sora-2-pro', duration: 25 }), g));
    const sent = duomiBody(g.provider.submit.mock.calls[0]![0]);
    expect(sent).toEqual({
      model: 'sora-2-pro-hd',
      prompt: seedBody.prompt,
      aspect_ratio: '16:9',
      duration: 25,
      image_urls: seedBody.image_urls,
      callback_url: callbackUrl('https://api.example.com', CALLBACK_SECRET, answer.body.id),
    });
    const token = new URL(sent.callback_url).searchParams.get('token')!;
    expect(verifyCallbackToken(CALLBACK_SECRET, answer.body.id, token)).toBe(true);
  });

  it('that the upstream refuses is 400 upstream_rejected with the upstream’s reason, and the task fails', async () => {
    const g = gateway();
    g.provider.submit.mockRejectedValueOnce(new UpstreamError('rejected', 'prompt violates content policy', 400));
    const answer = await respond(submitTask(submitEvent(), g));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: { code: 'upstream_rejected', type: 'invalid_request_error', message: 'prompt violates content policy' } });
    const id = String(answer.headers['x-task-id']);
    expect(taskItem(id)).toMatchObject({ state: 'failed', error_code: 'upstream_rejected', error_message: 'prompt violates content policy' });
    expect(g.queues.notify).not.toHaveBeenCalled();
  });

  it('that the upstream refuses tells the client’s webhook too', async () => {
    const g = gateway();
    g.provider.submit.mockRejectedValueOnce(new UpstreamError('rejected', 'prompt violates content policy', 400));
    const answer = await respond(submitTask(submitEvent({ ...seedBody, callback_url: 'https://hooks.example.com/v' }), g));
    expect(answer.status).toBe(400);
    expect(g.queues.notify).toHaveBeenCalledOnce();
    expect(g.queues.notify).toHaveBeenCalledWith({ taskId: answer.headers['x-task-id'], attempt: 1 });
  });

  it('while the upstream answers 503 still answers 200 {id}, the task queued for a later try', async () => {
    const g = gateway();
    g.provider.submit.mockRejectedValueOnce(new UpstreamError('unavailable', 'upstream answered 503: busy', 503));
    const answer = await respond(submitTask(submitEvent(), g));
    expect(answer).toMatchObject({ status: 200, body: { id: expect.any(String) } });
    const task = taskItem(answer.body.id)!;
    expect(task).toMatchObject({ state: 'queued', submit_attempts: 1, upstream_message: 'upstream answered 503: busy', open: expect.stringMatching(/^open#\d+$/) });
    // base 30 s with 75–125 % jitter
    expect(task.due_at! - g.clock.now()).toBeGreaterThanOrEqual(22_000);
    expect(task.due_at! - g.clock.now()).toBeLessThanOrEqual(38_000);
  });

  it('while the upstream is rate limiting waits at least its Retry-After', async () => {
    const g = gateway();
    g.provider.submit.mockRejectedValueOnce(new UpstreamError('unavailable', 'upstream answered 429: slow down', 429, undefined, 600));
    const answer = await respond(submitTask(submitEvent(), g));
    expect(answer.status).toBe(200);
    expect(taskItem(answer.body.id)!.due_at! - g.clock.now()).toBeGreaterThanOrEqual(600_000);
  });

  it('when the upstream call breaks in an unexpected way still answers 200 {id}, the task queued', async () => {
    const g = gateway();
    g.provider.submit.mockRejectedValueOnce(new TypeError('fetch failed'));
    const answer = await respond(submitTask(submitEvent(), g));
    expect(answer.status).toBe(200);
    expect(taskItem(answer.body.id)).toMatchObject({ state: 'queued', upstream_message: 'fetch failed' });
  });

  it('with the deprecated character fields answers with a Deprecation header', async () => {
    const g = gateway();
    const answer = await respond(
      submitTask(submitEvent({ ...seedBody, character_url: 'https://cdn.example.com/c.mp4', character_timestamps: '0,3' }), g),
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.deprecation).toBe('true');
    expect(taskItem(answer.body.id)!.characters).toEqual([{ url: 'https://cdn.example.com/c.mp4', timestamps: '0,3' }]);
  });

  describe('with an Idempotency-Key', () => {
    it('a retry answers the same id without a second upstream call', async () => {
      const g = gateway();
      const first = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-1' }), g));
      const again = await respond(submitTask(submitEvent(seedBody, { 'Idempotency-Key': 'order-1' }), g));
      expect(first.status).toBe(200);
      expect(again).toMatchObject({ status: 200, body: { id: first.body.id } });
      expect(g.provider.submit).toHaveBeenCalledOnce();
      expect(tasksWritten()).toHaveLength(1);
    });

    it('the same key with a different body is 409 and starts nothing', async () => {
      const g = gateway();
      await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-1' }), g));
      const other = await respond(submitTask(submitEvent({ ...seedBody, prompt: 'another prompt' }, { 'idempotency-key': 'order-1' }), g));
      expect(other.status).toBe(409);
      expect(other.body).toEqual({
        error: { code: 'idempotency_conflict', type: 'invalid_request_error', message: 'this Idempotency-Key was used with a different request body' },
      });
      expect(g.provider.submit).toHaveBeenCalledOnce();
      expect(tasksWritten()).toHaveLength(1);
    });

    it('belongs to one API key: another key using it gets a task of its own', async () => {
      const g = gateway();
      const mine = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-1' }), g));
      const theirs = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-1', authorization: OTHER_KEY }), g));
      expect(theirs.status).toBe(200);
      expect(theirs.body.id).not.toBe(mine.body.id);
      expect(g.provider.submit).toHaveBeenCalledTimes(2);
    });

    it('a retry of a refused request gets the same refusal', async () => {
      const g = gateway();
      g.provider.submit.mockRejectedValueOnce(new UpstreamError('rejected', 'prompt violates content policy', 400));
      const first = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-2' }), g));
      const again = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-2' }), g));
      expect(again).toMatchObject({ status: 400, body: first.body });
      expect(again.headers['x-task-id']).toBe(first.headers['x-task-id']);
      expect(g.provider.submit).toHaveBeenCalledOnce();
    });

    it('a retry after the first attempt died before recording its task carries on with the claimed id', async () => {
      const g = gateway();
      const claimed = newTaskId(g.clock.now());
      const print = fingerprint(submitBodySchema(g.config.catalog.models).parse(seedBody));
      table.set(`IDEM#${OWNER}#order-3`, { pk: `IDEM#${OWNER}#order-3`, task_id: claimed, fingerprint: print, expires_at: 4_000_000_000 });
      const answer = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'order-3' }), g));
      expect(answer).toMatchObject({ status: 200, body: { id: claimed } });
      expect(taskItem(claimed)).toMatchObject({ state: 'submitted' });
      expect(g.provider.submit).toHaveBeenCalledOnce();
    });

    it('that has expired may be used again for a new task', async () => {
      const g = gateway();
      table.set(`IDEM#${OWNER}#order-4`, { pk: `IDEM#${OWNER}#order-4`, task_id: 'task_old', fingerprint: 'x', expires_at: 1 });
      const answer = await respond(submitTask(submitEvent({ ...seedBody, prompt: 'new' }, { 'idempotency-key': 'order-4' }), g));
      expect(answer.status).toBe(200);
      expect(answer.body.id).not.toBe('task_old');
    });

    it('longer than 255 characters is 400 on Idempotency-Key', async () => {
      const answer = await respond(submitTask(submitEvent(seedBody, { 'idempotency-key': 'k'.repeat(256) }), gateway()));
      expect(answer).toMatchObject({
        status: 400,
        body: { error: { code: 'invalid_request', type: 'invalid_request_error', message: 'Idempotency-Key must be 1 to 255 characters', param: 'Idempotency-Key' } },
      });
      expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    });
  });
});

// ---- callbacks --------------------------------------------------------------------------

describe('an upstream callback', () => {
  it('with a bad token is 401 and touches nothing', async () => {
    const g = gateway();
    const task = seedTask(g);
    ddb.resetHistory();
    const answer = await respond(handleCallback(callbackEvent(task.id, succeededBody(), 'bad-token'), g));
    expect(answer).toEqual({
      status: 401,
      headers: expect.anything(),
      body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'bad callback token' } },
    });
    expect(ddb.calls()).toHaveLength(0);
    expect(g.queues.archive).not.toHaveBeenCalled();
  });

  it('without a token, or with another task’s token, is 401 and touches nothing', async () => {
    const g = gateway();
    const task = seedTask(g);
    const other = seedTask(g);
    ddb.resetHistory();
    expect((await respond(handleCallback(callbackEvent(task.id, succeededBody(), ''), g))).status).toBe(401);
    expect((await respond(handleCallback(callbackEvent(task.id, succeededBody(), callbackToken(CALLBACK_SECRET, other.id)), g))).status).toBe(401);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('reporting success answers 200 and enqueues one archive job', async () => {
    const g = gateway();
    const task = seedTask(g);
    const answer = await respond(handleCallback(callbackEvent(task.id, succeededBody()), g));
    expect(answer).toMatchObject({ status: 200, body: { ok: true } });
    expect(g.queues.archive).toHaveBeenCalledOnce();
    expect(g.queues.archive).toHaveBeenCalledWith({ taskId: task.id, attempt: 1 });
    expect(taskItem(task.id)).toMatchObject({ state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/videos/up-1.mp4' });
  });

  it('repeated after success changes nothing and enqueues nothing more', async () => {
    const g = gateway();
    const task = seedTask(g);
    await respond(handleCallback(callbackEvent(task.id, succeededBody()), g));
    const again = await respond(handleCallback(callbackEvent(task.id, succeededBody()), g));
    expect(again.status).toBe(200);
    expect(g.queues.archive).toHaveBeenCalledOnce();
  });

  it('racing another callback that moved the task first (the update’s condition fails) enqueues nothing', async () => {
    const g = gateway();
    const task = seedTask(g);
    ddb.on(UpdateCommand).rejects(conditionFailed());
    const answer = await respond(handleCallback(callbackEvent(task.id, succeededBody()), g));
    expect(answer.status).toBe(200);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    expect(g.queues.archive).not.toHaveBeenCalled();
  });

  it('repeated after the video was archived changes nothing', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'succeeded', progress: 100, video_key: `videos/x.mp4`, open: undefined, due_at: undefined });
    ddb.resetHistory();
    expect((await respond(handleCallback(callbackEvent(task.id, succeededBody()), g))).status).toBe(200);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(g.queues.archive).not.toHaveBeenCalled();
  });

  it('reporting progress raises the task’s progress, never lowers it', async () => {
    const g = gateway();
    const task = seedTask(g);
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'running', progress: 60 }), g));
    expect(taskItem(task.id)).toMatchObject({ state: 'in_progress', progress: 60 });
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'running', progress: 30 }), g));
    expect(taskItem(task.id)!.progress).toBe(60);
  });

  it('with an unknown state word keeps the task running', async () => {
    const g = gateway();
    const task = seedTask(g);
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'queued_for_gpu', progress: 5 }), g));
    expect(taskItem(task.id)!.state).toBe('in_progress');
  });

  it('reporting failure fails the task with the upstream’s message and tells the webhook', async () => {
    const g = gateway();
    const task = seedTask(g, { callback_url: 'https://hooks.example.com/v' });
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'error', message: 'content moderation' }), g));
    expect(taskItem(task.id)).toMatchObject({ state: 'failed', error_code: 'upstream_failed', error_message: 'content moderation', notify_status: 'pending' });
    expect(g.queues.notify).toHaveBeenCalledExactlyOnceWith({ taskId: task.id, attempt: 1 });
  });

  it('reporting success without a video fails the task', async () => {
    const g = gateway();
    const task = seedTask(g);
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'succeeded', data: { videos: [] } }), g));
    expect(taskItem(task.id)).toMatchObject({ state: 'failed', error_code: 'upstream_failed' });
    expect(g.queues.archive).not.toHaveBeenCalled();
  });

  it('reporting failure after the upstream already reported success does not throw the video away', async () => {
    const g = gateway();
    const task = seedTask(g);
    await respond(handleCallback(callbackEvent(task.id, succeededBody()), g));
    await respond(handleCallback(callbackEvent(task.id, { id: 'up-1', state: 'error', message: 'late word' }), g));
    expect(taskItem(task.id)!.state).toBe('archiving');
  });

  it('naming another upstream task is 409 and changes nothing', async () => {
    const g = gateway();
    const task = seedTask(g);
    const answer = await respond(handleCallback(callbackEvent(task.id, succeededBody('up-999')), g));
    expect(answer).toMatchObject({ status: 409, body: { error: { code: 'conflict', type: 'invalid_request_error', message: 'callback is for another upstream task' } } });
    expect(taskItem(task.id)!.state).toBe('submitted');
  });

  it('for a task that does not exist is 404', async () => {
    const answer = await respond(handleCallback(callbackEvent('task_01kaskw0k0a4x7q2r5t9v6w8yc', succeededBody()), gateway()));
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } } });
  });

  it('with a body that is not JSON, or has no state, is 400', async () => {
    const g = gateway();
    const task = seedTask(g);
    expect((await respond(handleCallback(callbackEvent(task.id, '{"state":'), g))).body).toEqual({
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'callback body is not valid JSON' },
    });
    expect((await respond(handleCallback(callbackEvent(task.id, { progress: 5 }), g))).body).toEqual({
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'upstream status body has no state' },
    });
  });
});

describe('cancelling a task', () => {
  const cancelEvent = (id: string) =>
    httpEvent({ route: 'POST /v1/videos/generations/{id}/cancel', path: `/v1/videos/generations/${id}/cancel`, pathParameters: { id }, headers: { authorization: API_KEY } });

  it('whose video is being stored, or that has ended, is 409 not_cancellable and changes nothing', async () => {
    const g = gateway();
    for (const [state, where] of [
      ['archiving', 'its video is being stored'],
      ['succeeded', 'it has succeeded'],
    ] as const) {
      const task = seedTask(g, { state });
      const answer = await respond(cancelTask(cancelEvent(task.id), g));
      expect(answer).toMatchObject({ status: 409, body: { error: { code: 'not_cancellable', type: 'invalid_request_error', message: `the task cannot be cancelled: ${where}` } } });
      expect(table.get(`TASK#${task.id}`)!.state).toBe(state);
    }
    expect(g.queues.notify).not.toHaveBeenCalled();
  });

  it('that changed while being cancelled, yet stands where it was, is 409 conflict: ask again', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'queued' });
    vi.spyOn(g.store, 'markFailed').mockResolvedValueOnce(undefined);
    const answer = await respond(cancelTask(cancelEvent(task.id), g));
    expect(answer).toMatchObject({ status: 409, body: { error: { code: 'conflict', message: 'the task changed while it was being cancelled; try again' } } });
    expect(table.get(`TASK#${task.id}`)!.state).toBe('queued');
  });
});

describe('applyUpstreamStatus', () => {
  it('leaves a finished task alone whatever the upstream says', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'failed', error_code: 'timeout', error_message: 'too slow' });
    ddb.resetHistory();
    await applyUpstreamStatus(task, duomi.parseStatus(succeededBody()), g);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(g.queues.archive).not.toHaveBeenCalled();
  });
});

// ---- query ------------------------------------------------------------------------------

describe('reading tasks', () => {
  it('without a key is 401', async () => {
    const g = gateway();
    const task = seedTask(g);
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/generations/{id}', task.id, {}), g));
    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'send your API key in the Authorization header' } } });
  });

  it('of an unknown id is 404', async () => {
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/generations/{id}', 'task_01kaskw0k0a4x7q2r5t9v6w8yc'), gateway()));
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } } });
  });

  it('of another key’s task is the same 404', async () => {
    const g = gateway();
    const task = seedTask(g, { owner: hashKey(OTHER_KEY) });
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/generations/{id}', task.id), g));
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } } });
  });

  it('shows a running task in the seed provider’s shape', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'in_progress', progress: 40 });
    for (const route of ['GET /v1/videos/generations/{id}', 'GET /v1/videos/tasks/{id}']) {
      const answer = await respond(queryTasks(getEvent(route, task.id), g));
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        id: task.id,
        state: 'running',
        status: 'in_progress',
        progress: 40,
        data: { videos: [] },
        message: '',
        model: 'sora-2',
        video: null,
        error: null,
        completed_at: null,
      });
    }
  });

  it('shows a finished task with a fresh link to its video', async () => {
    const g = gateway();
    const task = seedTask(g, {
      state: 'succeeded',
      progress: 100,
      video_key: 'videos/v.mp4',
      video_bytes: 2048,
      video_sha256: 'cd'.repeat(32),
      video_content_type: 'video/mp4',
      completed_at: g.clock.now(),
    });
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/generations/{id}', task.id), g));
    const url = 'https://vtg-unit-videos.s3.amazonaws.com/videos/v.mp4?X-Amz-Signature=abc';
    expect(answer.body).toMatchObject({
      state: 'succeeded',
      status: 'succeeded',
      progress: 100,
      data: { videos: [{ url }] },
      video: { url, bytes: 2048, content_type: 'video/mp4', sha256: 'cd'.repeat(32) },
    });
  });

  it('shows a failed task with its error', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'failed', error_code: 'upstream_rejected', error_message: 'prompt violates content policy' });
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/tasks/{id}', task.id), g));
    expect(answer.body).toMatchObject({
      state: 'error',
      status: 'failed',
      message: 'prompt violates content policy',
      error: { code: 'upstream_rejected', message: 'prompt violates content policy' },
    });
  });

  it('lists the caller’s own tasks, newest first, a page at a time', async () => {
    const g = gateway();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      g.clock.t += 1000;
      ids.push(seedTask(g).id);
    }
    seedTask(g, { owner: hashKey(OTHER_KEY) });
    const page1 = await respond(queryTasks(getEvent('GET /v1/videos/generations', undefined, { authorization: API_KEY }, { limit: '2' }), g));
    expect(page1.body).toMatchObject({ object: 'list', has_more: true, next_cursor: ids[1] });
    expect(page1.body.data.map((t: { id: string }) => t.id)).toEqual([ids[2], ids[1]]);
    const page2 = await respond(
      queryTasks(getEvent('GET /v1/videos/generations', undefined, { authorization: API_KEY }, { limit: '2', after: ids[1]! }), g),
    );
    expect(page2.body).toMatchObject({ has_more: false, next_cursor: null });
    expect(page2.body.data.map((t: { id: string }) => t.id)).toEqual([ids[0]]);
  });

  it('refuses a list limit out of range with 400 on limit', async () => {
    const answer = await respond(queryTasks(getEvent('GET /v1/videos/generations', undefined, { authorization: API_KEY }, { limit: '500' }), gateway()));
    expect(answer).toMatchObject({ status: 400, body: { error: { code: 'invalid_request', type: 'invalid_request_error', message: 'limit is at most 100', param: 'limit' } } });
  });

  it('redirects to the video of a finished task, and 404s while it is not ready', async () => {
    const g = gateway();
    const done = seedTask(g, { state: 'succeeded', video_key: 'videos/v.mp4', video_bytes: 1 });
    const running = seedTask(g);
    const redirect = await queryTasks(getEvent('GET /v1/videos/generations/{id}/content', done.id), g);
    expect(redirect).toMatchObject({ statusCode: 302, headers: { location: 'https://vtg-unit-videos.s3.amazonaws.com/videos/v.mp4?X-Amz-Signature=abc' } });
    const notYet = await respond(queryTasks(getEvent('GET /v1/videos/generations/{id}/content', running.id), g));
    expect(notYet).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error' } } });
  });

  it('answers an unknown route with a JSON 404', async () => {
    const answer = await respond(queryTasks(httpEvent({ route: '$default', path: '/v2/nothing' }), gateway()));
    expect(answer).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error' } } });
  });
});

// ---- archive, notify, reconcile ---------------------------------------------------------

describe('archiving a video', () => {
  it('copies it, marks the task succeeded and tells the webhook', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4', callback_url: 'https://hooks.example.com/v' });
    await archiveTask({ taskId: task.id, attempt: 1 }, g);
    expect(g.archiver.archive).toHaveBeenCalledWith('https://cdn.duomi.example/v.mp4', `videos/${task.id}.mp4`, { beforeStore: expect.any(Function) });
    expect(taskItem(task.id)).toMatchObject({ state: 'succeeded', video_key: `videos/${task.id}.mp4`, video_bytes: 2048 });
    expect(g.queues.notify).toHaveBeenCalledExactlyOnceWith({ taskId: task.id, attempt: 1 });
  });

  it('sends an upstream\'s key only to a URL on its configured origin, and only for a kind whose content endpoint wants it', async () => {
    const g = gateway({
      UPSTREAMS: JSON.stringify([
        { name: 'reseller', kind: 'openai', baseUrl: 'https://upstream.example.com/v1', apiKey: 'sk-reseller' },
        { name: 'duomi', kind: 'duomi', baseUrl: 'https://upstream.example.com', apiKey: 'sk-duomi' },
      ]),
      MODELS: JSON.stringify({ 'sora-2': { routes: [{ upstream: 'reseller', model: 'sora-2' }, { upstream: 'duomi', model: 'sora-2' }] } }),
      MODEL_MAP: undefined,
      DISABLED_MODELS: undefined,
    });
    const own = seedTask(g, { state: 'archiving', upstream: 'reseller', upstream_video_url: 'https://upstream.example.com/v1/videos/up-1/content' });
    await archiveTask({ taskId: own.id, attempt: 1 }, g);
    expect(g.archiver.archive).toHaveBeenLastCalledWith(own.upstream_video_url, `videos/${own.id}.mp4`, {
      beforeStore: expect.any(Function),
      headers: { authorization: 'Bearer sk-reseller' },
    });
    const bare = [
      ['reseller', 'https://cdn.upstream.example.com/v.mp4'],
      ['reseller', 'http://upstream.example.com/v.mp4'],
      ['reseller', 'https://upstream.example.com:8443/v.mp4'],
      // duomi's video URLs want no key, even on its own host.
      ['duomi', 'https://upstream.example.com/v.mp4'],
    ];
    for (const [upstream, url] of bare) {
      const task = seedTask(g, { state: 'archiving', upstream, upstream_video_url: url });
      await archiveTask({ taskId: task.id, attempt: 1 }, g);
      expect(g.archiver.archive.mock.lastCall![2]).toEqual({ beforeStore: expect.any(Function), headers: undefined });
      expect(taskItem(task.id)).toMatchObject({ state: 'succeeded' });
    }
  });

  it('copies a video the upstream wrote into the bucket (s3://) server-side, downloading nothing', async () => {
    const g = gateway();
    const source = `s3://${g.config.BUCKET_NAME}/bedrock/t/inv/output.mp4`;
    const task = seedTask(g, { state: 'archiving', upstream: 'duomi', upstream_video_url: source });
    await archiveTask({ taskId: task.id, attempt: 1 }, g);
    expect(g.archiver.copy).toHaveBeenCalledExactlyOnceWith(source, `videos/${task.id}.mp4`, { beforeStore: expect.any(Function) });
    expect(g.archiver.archive).not.toHaveBeenCalled();
    expect(taskItem(task.id)).toMatchObject({ state: 'succeeded', video_key: `videos/${task.id}.mp4`, video_bytes: 4096 });
  });

  it('that an earlier attempt stored (facts recorded, object found) finishes from the object, fetching nothing', async () => {
    const g = gateway();
    const stored = { video_key: 'videos/x.mp4', video_bytes: 4096, video_sha256: 'cd'.repeat(32), video_content_type: 'video/mp4' };
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/gone.mp4', archive_attempts: 1, ...stored });
    g.archiver.findStored.mockImplementationOnce(async (v) => v);
    await archiveTask({ taskId: task.id, attempt: 2 }, g);
    expect(g.archiver.findStored).toHaveBeenCalledExactlyOnceWith({ key: 'videos/x.mp4', bytes: 4096, sha256: 'cd'.repeat(32), contentType: 'video/mp4' });
    expect(g.archiver.archive).not.toHaveBeenCalled();
    expect(taskItem(task.id)).toMatchObject({ state: 'succeeded', ...stored });
  });

  it('that an earlier attempt recorded but never stored is fetched again', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4', video_key: 'videos/x.mp4', video_bytes: 4096, video_sha256: 'cd'.repeat(32) });
    await archiveTask({ taskId: task.id, attempt: 2 }, g);
    expect(g.archiver.findStored).toHaveBeenCalledOnce();
    expect(g.archiver.archive).toHaveBeenCalledOnce();
    expect(taskItem(task.id)).toMatchObject({ state: 'succeeded', video_bytes: 2048 });
  });

  it('records the video on the task before it is stored, and gives up the upload when another worker has taken the task', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4' });
    const facts = { key: `videos/${task.id}.mp4`, bytes: 2048, sha256: 'ab'.repeat(32), contentType: 'video/mp4' };
    let recorded: unknown;
    g.archiver.archive.mockImplementationOnce(async (_url, _key, options) => {
      await options!.beforeStore!(facts);
      recorded = structuredClone(taskItem(task.id));
      return facts;
    });
    await archiveTask({ taskId: task.id, attempt: 1 }, g);
    expect(recorded).toMatchObject({ state: 'archiving', video_bytes: 2048, video_sha256: 'ab'.repeat(32) });

    const other = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4' });
    g.archiver.archive.mockImplementationOnce(async (_url, _key, options) => {
      // Meanwhile the lease ran out and another worker took the task over.
      table.get(`TASK#${other.id}`)!.archive_lease_until = g.clock.now() + 1;
      await options!.beforeStore!(facts);
      return facts;
    });
    await archiveTask({ taskId: other.id, attempt: 1 }, g);
    expect(taskItem(other.id)).toMatchObject({ state: 'archiving', archive_lease_until: g.clock.now() + 1 });
    expect(taskItem(other.id)).not.toHaveProperty('video_key');
    expect(g.queues.archive).not.toHaveBeenCalled();
  });

  it('is done by one worker only: a second job finds the task held', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4', archive_lease_until: g.clock.now() + ARCHIVE_LEASE_MS });
    await archiveTask({ taskId: task.id, attempt: 1 }, g);
    expect(g.archiver.archive).not.toHaveBeenCalled();
  });

  it('that fails is retried later with the next attempt', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4' });
    g.archiver.archive.mockRejectedValueOnce(new Error('the upstream video URL answered 404'));
    await archiveTask({ taskId: task.id, attempt: 1 }, g);
    expect(taskItem(task.id)).toMatchObject({ state: 'archiving', upstream_message: 'the upstream video URL answered 404' });
    expect(taskItem(task.id)).not.toHaveProperty('archive_lease_until');
    expect(g.queues.archive).toHaveBeenCalledWith({ taskId: task.id, attempt: 2 }, expect.any(Number));
  });

  it('that fails on the last attempt fails the task with archive_failed', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'archiving', upstream_video_url: 'https://cdn.duomi.example/v.mp4' });
    g.archiver.archive.mockRejectedValueOnce(new Error('the upstream sent text/html, not a video'));
    await archiveTask({ taskId: task.id, attempt: 5 }, g);
    expect(taskItem(task.id)).toMatchObject({ state: 'failed', error_code: 'archive_failed' });
    expect(taskItem(task.id)!.error_message).toContain('the upstream sent text/html, not a video');
    expect(g.queues.archive).not.toHaveBeenCalled();
  });
});

describe('notifying the client', () => {
  let hooks: Server;
  let hookUrl = '';
  let hookStatus = 204;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    hooks = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(hookStatus).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks/video`;
  });

  afterAll(async () => {
    hooks.closeAllConnections();
    await new Promise<void>((resolve) => hooks.close(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
    hookStatus = 204;
  });

  it('posts the task view signed with the key’s webhook secret, once', async () => {
    const g = gateway({ LOCAL_MODE: 'true' });
    const task = seedTask(g, { state: 'failed', error_code: 'timeout', error_message: 'too slow', callback_url: hookUrl, notify_status: 'pending' });
    await notifyTask({ taskId: task.id, attempt: 1 }, g);
    expect(received).toHaveLength(1);
    const { headers, body } = received[0]!;
    const verified = new Webhook(WEBHOOK_SECRET).verify(body, {
      'webhook-id': String(headers['webhook-id']),
      'webhook-timestamp': String(headers['webhook-timestamp']),
      'webhook-signature': String(headers['webhook-signature']),
    });
    expect(verified).toMatchObject({ id: task.id, status: 'failed', error: { code: 'timeout', message: 'too slow' } });
    expect(taskItem(task.id)).toMatchObject({ notify_status: 'delivered' });
    await notifyTask({ taskId: task.id, attempt: 1 }, g);
    expect(received).toHaveLength(1);
  });

  it('that is refused is retried later, the attempt recorded', async () => {
    const g = gateway({ LOCAL_MODE: 'true' });
    hookStatus = 500;
    const task = seedTask(g, { state: 'failed', error_code: 'timeout', error_message: 'too slow', callback_url: hookUrl, notify_status: 'pending' });
    await notifyTask({ taskId: task.id, attempt: 1 }, g);
    expect(taskItem(task.id)).toMatchObject({ notify_status: 'pending', notify_attempts: 1, notify_log: [{ attempt: 1, outcome: 'HTTP 500' }] });
    expect(g.queues.notify).toHaveBeenCalledWith({ taskId: task.id, attempt: 2 }, expect.any(Number));
  });
});

describe('reconciling', () => {
  it('resubmits a queued task whose time has come', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'queued', upstream_id: undefined, due_at: g.clock.now() - 1 });
    g.provider.submit.mockResolvedValueOnce({ upstreamId: 'up-late' });
    const summary = await reconcile(g);
    expect(summary).toMatchObject({ examined: 1, resubmitted: 1 });
    expect(taskItem(task.id)).toMatchObject({ state: 'submitted', upstream_id: 'up-late' });
  });

  it('resubmits a task with an uploaded image under a link signed at the resubmit, after the first one has expired', async () => {
    const g = gateway();
    const created = g.clock.now();
    const task = seedTask(g, {
      state: 'queued',
      upstream_id: undefined,
      submit_attempts: 0,
      input_image: 'inputs/0b5e4a1c-upload.png',
      due_at: created - 1,
      deadline_at: created + 6 * 3600_000,
    });
    g.provider.submit.mockRejectedValueOnce(new UpstreamError('unavailable', 'upstream down'));
    await submitUpstream(task, g);
    expect(taskItem(task.id)).toMatchObject({ state: 'queued', submit_attempts: 1 });

    g.clock.t += 2 * 3600_000;
    g.provider.submit.mockResolvedValueOnce({ upstreamId: 'up-later' });
    expect(await reconcile(g)).toMatchObject({ resubmitted: 1 });
    expect(taskItem(task.id)).toMatchObject({ state: 'submitted', upstream_id: 'up-later' });

    const links = g.provider.submit.mock.calls.map(([job]) => new URL(job.imageUrls[0]!));
    expect(links).toHaveLength(2);
    const signedAt = (link: URL) => {
      const [, y, mo, d, h, mi, s] = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(link.searchParams.get('X-Amz-Date')!)!;
      return Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!);
    };
    const expiresAt = (link: URL) => signedAt(link) + Number(link.searchParams.get('X-Amz-Expires')) * 1000;
    for (const link of links) {
      expect(link.pathname).toMatch(/\/inputs\/0b5e4a1c-upload\.png$/);
      expect(link.searchParams.get('X-Amz-Expires')).toBe(String(INPUT_LINK_SECONDS));
      expect(link.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    }
    const [first, second] = links as [URL, URL];
    expect(Math.floor(signedAt(first) / 1000)).toBe(Math.floor(created / 1000));
    // The first link was dead by the resubmit; the one the upstream got then is signed then, and lives an hour from it.
    expect(expiresAt(first)).toBeLessThan(g.clock.now());
    expect(Math.floor(signedAt(second) / 1000)).toBe(Math.floor(g.clock.now() / 1000));
    expect(expiresAt(second)).toBeGreaterThan(g.clock.now() + (INPUT_LINK_SECONDS - 1) * 1000);
    expect(second.searchParams.get('X-Amz-Signature')).not.toBe(first.searchParams.get('X-Amz-Signature'));
    expect(taskItem(task.id)!.image_urls).toEqual([]);
  });

  it('fails a queued task past its deadline with timeout', async () => {
    const g = gateway();
    const task = seedTask(g, { state: 'queued', due_at: g.clock.now() - 1, deadline_at: g.clock.now() - 1 });
    expect(await reconcile(g)).toMatchObject({ timedOut: 1 });
    expect(taskItem(task.id)).toMatchObject({ state: 'failed', error_code: 'timeout' });
    expect(g.provider.submit).not.toHaveBeenCalled();
  });

  it('polls a silent task and archives it when the callback was lost', async () => {
    const g = gateway();
    const task = seedTask(g, { due_at: g.clock.now() - 1 });
    g.provider.status.mockResolvedValueOnce(duomi.parseStatus(succeededBody()));
    expect(await reconcile(g)).toMatchObject({ polled: 1 });
    expect(g.provider.status).toHaveBeenCalledWith('up-1');
    expect(g.queues.archive).toHaveBeenCalledExactlyOnceWith({ taskId: task.id, attempt: 1 });
  });

  it('does nothing when nothing is due', async () => {
    const g = gateway();
    seedTask(g);
    expect(await reconcile(g)).toMatchObject({ examined: 0 });
  });
});

// ---- the Lambda handlers themselves -----------------------------------------------------

const fixture = <T = any>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/events/${name}`, import.meta.url), 'utf8')) as T;

const lambdaContext = (name: string): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName: name,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${name}`,
  memoryLimitInMB: '512',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: `/aws/lambda/${name}`,
  logStreamName: '2025/11/24/[$LATEST]abc',
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});

type HttpLambda = (event: HttpEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
type QueueLambda = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

describe('the Lambda handlers', () => {
  const FIXTURE_TASK = 'task_01kaskw0k0a4x7q2r5t9v6w8yc';
  let upstream: Server;
  const upstreamSeen: { method?: string; url?: string; authorization?: string }[] = [];
  let handlers: {
    submit: HttpLambda;
    query: HttpLambda;
    callback: HttpLambda;
    archive: QueueLambda;
    notify: QueueLambda;
    reconcile: (event: unknown, context: Context) => Promise<unknown>;
  };

  const answerOf = (result: APIGatewayProxyStructuredResultV2) => ({
    status: result.statusCode,
    contentType: result.headers?.['content-type'],
    body: result.body ? JSON.parse(result.body) : undefined,
  });

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      upstreamSeen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(req.method === 'POST' ? { id: 'up-h1' } : { id: 'up-h1', state: 'running', progress: 30 }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));

    // The handlers read their configuration once, when they load.
    Object.assign(process.env, {
      ...baseEnv,
      MODEL_MAP: '{}',
      DISABLED_MODELS: '',
      UPSTREAM_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIAUNITTEST',
      AWS_SECRET_ACCESS_KEY: 'unit-test-secret',
    });
    const load = async (name: string) => ((await import(`../../lambdas/${name}/handler.ts`)) as { handler: unknown }).handler;
    handlers = {
      submit: (await load('submit')) as HttpLambda,
      query: (await load('query')) as HttpLambda,
      callback: (await load('callback')) as HttpLambda,
      archive: (await load('archive')) as QueueLambda,
      notify: (await load('notify')) as QueueLambda,
      reconcile: (await load('reconcile')) as (event: unknown, context: Context) => Promise<unknown>,
    };
  });

  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  beforeEach(() => {
    upstreamSeen.length = 0;
  });

  function fixtureTask(overrides: Partial<TaskRecord> = {}) {
    const now = Date.now();
    const task = taskRecord(now, {
      id: FIXTURE_TASK,
      owner: OWNER,
      state: 'submitted',
      prompt: 'The car moves forward at a high speed',
      duration: 15,
      submit_attempts: 1,
      upstream_id: 'up-8841',
      due_at: now + 300_000,
      ...overrides,
    });
    table.set(`TASK#${task.id}`, { pk: `TASK#${task.id}`, ...task });
    return task;
  }

  it('submit: the seed example answers 200 {id} after the upstream took it', async () => {
    const answer = answerOf(await handlers.submit(fixture('submit-seed-example.json'), lambdaContext('submit')));
    expect(answer.status).toBe(200);
    expect(isTaskId(answer.body.id)).toBe(true);
    expect(upstreamSeen).toEqual([{ method: 'POST', url: '/v1/videos/generations', authorization: 'sk-upstream' }]);
    expect(taskItem(answer.body.id)).toMatchObject({ state: 'submitted', upstream_id: 'up-h1' });
  });

  it('submit: a request without a key is the JSON 401, with nothing written', async () => {
    const event = fixture<HttpEvent>('submit-seed-example.json');
    delete event.headers.authorization;
    const answer = answerOf(await handlers.submit(event, lambdaContext('submit')));
    expect(answer).toEqual({
      status: 401,
      contentType: 'application/json; charset=utf-8',
      body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'send your API key in the Authorization header' } },
    });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('submit: a failure nobody expected is the bare JSON 500', async () => {
    ddb.on(PutCommand).rejects(new Error('ProvisionedThroughputExceededException: table vtg-unit'));
    const answer = answerOf(await handlers.submit(fixture('submit-seed-example.json'), lambdaContext('submit')));
    expect(answer).toEqual({
      status: 500,
      contentType: 'application/json; charset=utf-8',
      body: { error: { code: 'internal_error', type: 'server_error', message: 'internal error' } },
    });
  });

  it('query: no key is the JSON 401', async () => {
    const event = fixture<HttpEvent>('query-task.json');
    delete event.headers.authorization;
    expect(answerOf(await handlers.query(event, lambdaContext('query')))).toEqual({
      status: 401,
      contentType: 'application/json; charset=utf-8',
      body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'send your API key in the Authorization header' } },
    });
  });

  it('query: an unknown task is the JSON 404', async () => {
    expect(answerOf(await handlers.query(fixture('query-task.json'), lambdaContext('query')))).toEqual({
      status: 404,
      contentType: 'application/json; charset=utf-8',
      body: { error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } },
    });
  });

  it('query: a known task is its view', async () => {
    fixtureTask({ state: 'in_progress', progress: 55 });
    const answer = answerOf(await handlers.query(fixture('query-task.json'), lambdaContext('query')));
    expect(answer).toMatchObject({ status: 200, body: { id: FIXTURE_TASK, state: 'running', progress: 55 } });
  });

  it('query: the list of the caller’s tasks', async () => {
    fixtureTask();
    const answer = answerOf(await handlers.query(fixture('query-list.json'), lambdaContext('query')));
    expect(answer).toMatchObject({ status: 200, body: { object: 'list', has_more: false, data: [{ id: FIXTURE_TASK }] } });
  });

  it('callback: success enqueues one archive job on the archive queue', async () => {
    const event = fixture<HttpEvent>('callback-succeeded.json');
    expect(event.queryStringParameters!.token).toBe(callbackToken(CALLBACK_SECRET, FIXTURE_TASK));
    fixtureTask();
    expect(answerOf(await handlers.callback(event, lambdaContext('callback')))).toMatchObject({ status: 200, body: { ok: true } });
    expect(answerOf(await handlers.callback(fixture('callback-succeeded.json'), lambdaContext('callback'))).status).toBe(200);
    const sent = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ QueueUrl: baseEnv.ARCHIVE_QUEUE_URL, DelaySeconds: 0 });
    expect(JSON.parse(sent[0]!.MessageBody!)).toEqual({ taskId: FIXTURE_TASK, attempt: 1 });
  });

  it('callback: a bad token is the JSON 401 and touches nothing', async () => {
    const event = fixture<HttpEvent>('callback-succeeded.json');
    event.queryStringParameters = { token: 'forged' };
    expect(answerOf(await handlers.callback(event, lambdaContext('callback')))).toMatchObject({
      status: 401,
      body: { error: { code: 'unauthorized', type: 'authentication_error', message: 'bad callback token' } },
    });
    expect(ddb.calls()).toHaveLength(0);
    expect(sqs.calls()).toHaveLength(0);
  });

  it('archive: a job for a task not archiving is done with, nothing to redeliver', async () => {
    fixtureTask();
    expect(await handlers.archive(fixture('sqs-archive.json'), lambdaContext('archive'))).toEqual({ batchItemFailures: [] });
    expect(taskItem(FIXTURE_TASK)!.state).toBe('submitted');
  });

  it('archive: a job that throws is handed back to SQS for redelivery', async () => {
    ddb.on(UpdateCommand).rejects(new Error('connection reset'));
    const event = fixture<SQSEvent>('sqs-archive.json');
    expect(await handlers.archive(event, lambdaContext('archive'))).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }],
    });
  });

  it('archive: unreadable messages are dropped, not retried forever', async () => {
    expect(await handlers.archive(fixture('sqs-unreadable.json'), lambdaContext('archive'))).toEqual({ batchItemFailures: [] });
    expect(ddb.calls()).toHaveLength(0);
  });

  it('notify: a job for a task that owes no notification is done with', async () => {
    fixtureTask();
    expect(await handlers.notify(fixture('sqs-notify.json'), lambdaContext('notify'))).toEqual({ batchItemFailures: [] });
  });

  it('reconcile: resubmits a due queued task to the upstream', async () => {
    fixtureTask({ state: 'queued', upstream_id: undefined, submit_attempts: 0, due_at: Date.now() - 1000 });
    const scheduled = {
      version: '0',
      id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2025-11-24T11:30:00Z',
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:123456789012:rule/vtg-reconcile'],
      detail: {},
    };
    expect(await handlers.reconcile(scheduled, lambdaContext('reconcile'))).toMatchObject({ examined: 1, resubmitted: 1, errors: 0 });
    expect(upstreamSeen.map((s) => s.method)).toEqual(['POST']);
    expect(taskItem(FIXTURE_TASK)).toMatchObject({ state: 'submitted', upstream_id: 'up-h1' });
  });
});
