import dc from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, type ServiceInputTypes } from '@aws-sdk/lib-dynamodb';
import { localCredentials } from '../local/embedded-aws';
import { startLocalGateway } from '../local/gateway';
import { ratio, table } from './lib';

/**
 * The AWS requests one successful task costs end to end, counted on the wire in the local
 * stack (every SDK call of every handler goes over HTTP to the embedded DynamoDB, S3 and
 * SQS), for a callback upstream and a poll-only one, priced at on-demand list prices.
 */

/** us-east-1 list prices, December 2026, in dollars. */
const price = {
  apiRequest: 1.0 / 1e6, // HTTP API, first 300 M a month
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecondArm: 0.0000133334,
  dynamoWriteUnit: 0.625 / 1e6, // on-demand write request unit (1 KB)
  dynamoReadUnit: 0.125 / 1e6, // on-demand read request unit (4 KB, strongly consistent)
  sqsRequest: 0.4 / 1e6, // standard queue, per 64 KB chunk
  s3Write: 0.005 / 1000, // PUT, COPY, POST, LIST
  s3Read: 0.0004 / 1000, // GET, HEAD
  secretsCall: 0.05 / 10_000,
} as const;

/** Memory of the functions that API requests reach (lib/gateway-stack.ts). */
const apiMemoryMb: Record<string, number> = { submit: 512, query: 512, callback: 256 };

export interface TaskCost {
  label: string;
  tasks: number;
  /** Per task: requests by service and operation. */
  requests: Record<string, number>;
  /** Per task: API requests by function, and their mean time (ms). */
  api: Record<string, { count: number; ms: number }>;
  /** Per task: messages sent to the gateway's queues (each one Lambda invocation of its worker). */
  queueMessages: number;
  /** Per task: DynamoDB writes by item kind (TASK, USAGE, KEY, IDEM, CIRCUIT). */
  writesByItem: Record<string, number>;
  /** Size of a finished task item (bytes of its JSON, about DynamoDB's item size). */
  itemBytes: number;
  writeUnits: number;
  readUnits: number;
  dollarsPer1000: number;
  /** Wall time of the run divided by its tasks (submits 10 at a time). */
  msPerTask?: number;
  /** What the run found at its end: tasks in a final state, succeeded, with their video object, with exactly one S3 event. */
  verified?: { final: number; succeeded: number; objects: number; oneEvent: number; events: number };
}

interface Counter {
  requests: Map<string, number>;
  api: Map<string, { count: number; ms: number }>;
  /** DynamoDB writes by the kind of item written (the part of `pk` before `#`). */
  writesByItem: Map<string, number>;
}

/**
 * The item each DynamoDB write goes to, which the wire does not show: the document client's
 * `send` is wrapped for the measure (every handler writes through it), and unwrapped after.
 */
function countWritesByItem(counter: Counter): () => void {
  const proto = DynamoDBDocumentClient.prototype as unknown as { send: (command: { input: ServiceInputTypes }, ...rest: unknown[]) => unknown };
  const send = proto.send;
  proto.send = function (command, ...rest) {
    const input = command.input as { Key?: { pk?: string }; Item?: { pk?: string }; UpdateExpression?: string };
    const pk = input.Key?.pk ?? input.Item?.pk;
    const isWrite = input.Item !== undefined || input.UpdateExpression !== undefined || command.constructor.name === 'DeleteCommand';
    if (isWrite && typeof pk === 'string') counter.writesByItem.set(pk.split('#')[0]!, (counter.writesByItem.get(pk.split('#')[0]!) ?? 0) + 1);
    return send.call(this, command, ...rest);
  };
  return () => {
    proto.send = send;
  };
}

function s3Operation(req: ClientRequest): string {
  const [path = '', query = ''] = req.path.split('?');
  const q = new URLSearchParams(query);
  switch (req.method) {
    case 'PUT':
      if (req.getHeader('x-amz-copy-source')) return 'CopyObject';
      return q.has('partNumber') ? 'UploadPart' : 'PutObject';
    case 'POST':
      return q.has('uploads') ? 'CreateMultipartUpload' : q.has('uploadId') ? 'CompleteMultipartUpload' : q.has('delete') ? 'DeleteObjects' : 'POST';
    case 'GET':
      return path.split('/').filter(Boolean).length <= 1 ? 'ListObjects' : 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'DELETE':
      return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return String(req.method);
  }
}

const apiFunction = (path: string) =>
  path.startsWith('/callbacks/') ? 'callback' : /^\/v1\/videos(\/generations)?\/?(\?|$)/.test(path) && !path.includes('/generations/') ? 'submit' : 'query';

/** Counts the AWS SDK's requests (by endpoint) and the gateway's own API requests, until `stop`. */
export function countRequests(endpoints: { dynamodb: string; s3: string; sqs: string }, gatewayPort: number) {
  const counter: Counter = { requests: new Map(), api: new Map(), writesByItem: new Map() };
  const unwrap = countWritesByItem(counter);
  const service = new Map(Object.entries(endpoints).map(([name, url]) => [new URL(url).port, name]));
  const bump = (key: string) => counter.requests.set(key, (counter.requests.get(key) ?? 0) + 1);
  const onClient = ({ request }: { request: ClientRequest }) => {
    const port = String(request.getHeader('host') ?? '').split(':')[1] ?? '';
    const name = service.get(port);
    if (!name) return;
    if (name === 's3') return bump(`S3 ${s3Operation(request)}`);
    const target = String(request.getHeader('x-amz-target') ?? '?').split('.').pop();
    bump(`${name === 'dynamodb' ? 'DynamoDB' : 'SQS'} ${target}`);
  };
  const started = new WeakMap<IncomingMessage, number>();
  const onServerStart = ({ request, server }: { request: IncomingMessage; server: Server }) => {
    if ((server.address() as AddressInfo | null)?.port === gatewayPort) started.set(request, performance.now());
  };
  const onServerFinish = ({ request }: { request: IncomingMessage }) => {
    const at = started.get(request);
    if (at === undefined) return;
    const fn = apiFunction(request.url ?? '/');
    const entry = counter.api.get(fn) ?? { count: 0, ms: 0 };
    counter.api.set(fn, { count: entry.count + 1, ms: entry.ms + (performance.now() - at) });
  };
  dc.subscribe('http.client.request.start', onClient as (m: unknown) => void);
  dc.subscribe('http.server.request.start', onServerStart as (m: unknown) => void);
  dc.subscribe('http.server.response.finish', onServerFinish as (m: unknown) => void);
  return {
    counter,
    stop() {
      unwrap();
      dc.unsubscribe('http.client.request.start', onClient as (m: unknown) => void);
      dc.unsubscribe('http.server.request.start', onServerStart as (m: unknown) => void);
      dc.unsubscribe('http.server.response.finish', onServerFinish as (m: unknown) => void);
    },
  };
}

/**
 * A webhook endpoint counting the tasks notified: webhooks are at-least-once, so a task sent
 * twice counts once. It keeps the status each delivery carried, for the report of a task
 * that is not final after its webhook.
 */
async function hookReceiver(): Promise<{ url: string; received: () => number; statuses: (id: string) => string[]; close: () => Promise<void> }> {
  const notified = new Map<string, string[]>();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      const id = /task_[0-9a-z]+/.exec(body)?.[0] ?? body;
      const status = /"status":"([a-z_]+)"/.exec(body)?.[1] ?? '?';
      notified.set(id, [...(notified.get(id) ?? []), status]);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => notified.size,
    statuses: (id) => notified.get(id) ?? [],
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** What the record of a task that is not final after the run says about where it stopped. */
function stuckReport(task: Record<string, unknown>, webhooks: string[], now: number): string {
  const at = (k: string) => (typeof task[k] === 'number' ? `${k} ${Math.round(((task[k] as number) - now) / 1000)} s from now` : `no ${k}`);
  const fields = ['archive_attempts', 'poll_count', 'notify_status', 'notify_attempts', 'upstream_message', 'video_bytes', 'open'].map((k) => `${k} ${JSON.stringify(task[k])}`);
  const times = ['due_at', 'archive_lease_until', 'completed_at', 'created_at', 'heard_at', 'updated_at'].map(at);
  return `${task.id}: ${task.state}, ${[...times, ...fields].join(', ')}; webhooks received for it: ${webhooks.length ? webhooks.join(', ') : 'none'}`;
}

export const costCases = {
  callback: { label: 'callback upstream (sora-2 on the duomi-dialect simulator)', model: 'sora-2', duration: 10 },
  pollOnly: { label: 'poll-only upstream (seedance-2.0 on the OpenAI-compatible simulator)', model: 'seedance-2.0', duration: 5 },
} as const;

export interface CostRun {
  kind: keyof typeof costCases;
  tasks: number;
}

/**
 * Each run's tasks, submitted 10 at a time with at most 200 unfinished, from submit to
 * webhook, counted; then checked:
 * every task succeeded, with one video object and one S3 event each (nothing lost, nothing doubled).
 */
export async function measureTaskCost(runs: readonly CostRun[] = [{ kind: 'callback', tasks: 20 }, { kind: 'pollOnly', tasks: 20 }]): Promise<TaskCost[]> {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const dataDir = mkdtempSync(join(tmpdir(), 'vtg-task-cost-'));
  // The reconciler runs every minute as deployed: the safety net is part of the flow (its
  // queries, 33 a run, are a fixed cost a minute, counted here with the tasks of the run).
  const gw = await startLocalGateway({ dataDir, demo: true, renderMs: 300 });
  const hooks = await hookReceiver();
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials }));
  const s3 = new S3Client({ endpoint: gw.endpoints.s3, region: 'us-east-1', credentials: localCredentials, forcePathStyle: true });
  const results: TaskCost[] = [];
  try {
    for (const { kind, tasks } of runs) {
      const c = costCases[kind];
      const before = hooks.received();
      const eventsBefore = gw.s3Events.length;
      const counting = countRequests(gw.endpoints, Number(new URL(gw.url).port));
      const started = performance.now();
      const ids: string[] = [];
      let next = 0;
      const submitter = async () => {
        for (let i = next++; i < tasks; i = next++) {
          // At most 200 tasks in flight: the run measures the flow's steady pace, not a backlog in one process.
          while (ids.length - (hooks.received() - before) >= 200) await new Promise((r) => setTimeout(r, 20));
          const res = await fetch(`${gw.url}/v1/videos/generations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: c.model, prompt: `cost of a task ${i}`, duration: c.duration, callback_url: hooks.url }),
          });
          if (res.status !== 200) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
          ids.push(((await res.json()) as { id: string }).id);
        }
      };
      await Promise.all(Array.from({ length: Math.min(10, tasks) }, submitter));
      const read = async (id: string) => (await db.send(new GetCommand({ TableName: gw.tableName, Key: { pk: `TASK#${id}` }, ConsistentRead: true }))).Item!;
      // Where the first of `stuck` stopped; then all of them read again, twice: a record that
      // comes back newer was an older version answered for a moment, one that stays was rolled back.
      const stuckError = async (what: string, stuck: Record<string, unknown>[]) => {
        if (!stuck.length) return new Error(`${c.label}: ${what}`);
        const report = stuckReport(stuck[0]!, hooks.statuses(String(stuck[0]!.id)), Date.now());
        const again: string[] = [];
        for (const seconds of [1, 5]) {
          await new Promise((r) => setTimeout(r, seconds * 1000));
          const states = await Promise.all(stuck.map(async (t) => (await read(String(t.id))).state));
          again.push(`after ${seconds} s ${states.filter((st) => st === 'succeeded').length} of ${stuck.length} read succeeded (the first: ${states[0]})`);
        }
        return new Error(`${c.label}: ${what}; the first: ${report}; read again: ${again.join('; ')}`);
      };
      const deadline = Date.now() + 120_000 + tasks * 100;
      while (hooks.received() - before < tasks) {
        if (Date.now() > deadline) {
          const silent = await Promise.all(ids.filter((id) => hooks.statuses(id).length === 0).map(read));
          throw await stuckError(`${hooks.received() - before} of ${tasks} webhooks in time`, silent);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const wallMs = performance.now() - started;
      // The last writes (the webhook's record) land just after the delivery.
      await new Promise((r) => setTimeout(r, 500));
      counting.stop();
      const items = [];
      for (let i = 0; i < ids.length; i += 50) items.push(...(await Promise.all(ids.slice(i, i + 50).map(read))));
      const failed = items.filter((i) => i.state !== 'succeeded');
      if (failed.length) throw await stuckError(`${failed.length} tasks did not succeed`, failed);
      const perKey = new Map<string, number>();
      for (const e of gw.s3Events.slice(eventsBefore)) perKey.set(e.s3.object.key, (perKey.get(e.s3.object.key) ?? 0) + 1);
      const once = ids.filter((id) => perKey.get(`videos/${id}.mp4`) === 1).length;
      const events = [...perKey.values()].reduce((n, v) => n + v, 0);
      if (once !== tasks || events !== tasks) throw new Error(`${c.label}: ${events} S3 events for ${tasks} tasks, ${once} with exactly one`);
      const objects = await storedVideos(s3, gw.bucketName, ids);
      if (objects !== tasks) throw new Error(`${c.label}: ${objects} of ${tasks} succeeded tasks have their video in the bucket`);
      const final = items.filter((i) => i.state === 'succeeded' || i.state === 'failed').length;
      results.push({
        ...costOf(c.label, tasks, counting.counter, Math.max(...items.map((i) => JSON.stringify(i).length))),
        msPerTask: wallMs / tasks,
        verified: { final, succeeded: tasks - failed.length, objects, oneEvent: once, events },
      });
    }
    return results;
  } finally {
    db.destroy();
    s3.destroy();
    await hooks.close();
    await gw.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** How many of the tasks have their video in the bucket (HeadObject, 20 at a time). */
async function storedVideos(s3: S3Client, bucket: string, ids: readonly string[]): Promise<number> {
  let found = 0;
  for (let i = 0; i < ids.length; i += 20)
    await Promise.all(
      ids.slice(i, i + 20).map(async (id) => {
        try {
          await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `videos/${id}.mp4` }));
          found++;
        } catch (error) {
          if ((error as { name?: string }).name !== 'NotFound') throw error;
        }
      }),
    );
  return found;
}

function costOf(label: string, tasks: number, counter: Counter, itemBytes: number): TaskCost {
  const per = (n: number) => n / tasks;
  const requests = Object.fromEntries([...counter.requests].sort().map(([k, v]) => [k, per(v)]));
  const sum = (match: (op: string) => boolean) => Object.entries(requests).reduce((n, [k, v]) => (match(k) ? n + v : n), 0);
  const writes = sum((k) => /^DynamoDB (PutItem|UpdateItem|DeleteItem|BatchWriteItem)$/.test(k));
  const reads = sum((k) => /^DynamoDB (GetItem|Query|Scan|BatchGetItem)$/.test(k));
  // A task write costs a unit per KB of the item for the table and again for the due index,
  // which projects every attribute (counted for every write: an upper bound, the task leaves
  // it once finished); the owner index holds only keys, which its updates never change: one
  // unit when the task is created. The small key, usage and idempotency items a unit each.
  const taskWrites = per(counter.writesByItem.get('TASK') ?? 0);
  const otherWrites = Math.max(0, writes - taskWrites);
  const writeUnits = taskWrites * Math.ceil(itemBytes / 1024) * 2 + 1 + otherWrites;
  const readUnits = reads * Math.ceil(itemBytes / 4096);
  const api = Object.fromEntries([...counter.api].map(([fn, { count, ms }]) => [fn, { count: per(count), ms: ms / count }]));
  const apiRequests = Object.values(api).reduce((n, a) => n + a.count, 0);
  const queueMessages = sum((k) => /^SQS SendMessage/.test(k));
  const gbSeconds = Object.entries(api).reduce((n, [fn, a]) => n + a.count * (a.ms / 1000) * ((apiMemoryMb[fn] ?? 512) / 1024), 0);
  const sqsRequests = sum((k) => k.startsWith('SQS ')) + queueMessages * 2; // each message is also received and deleted by its worker's event source
  const s3Writes = sum((k) => /^S3 (PutObject|UploadPart|CreateMultipartUpload|CompleteMultipartUpload|CopyObject|POST|ListObjects)$/.test(k));
  const s3Reads = sum((k) => /^S3 (GetObject|HeadObject)$/.test(k));
  const dollars =
    apiRequests * price.apiRequest +
    (apiRequests + queueMessages) * price.lambdaRequest +
    gbSeconds * price.lambdaGbSecondArm +
    writeUnits * price.dynamoWriteUnit +
    readUnits * price.dynamoReadUnit +
    sqsRequests * price.sqsRequest +
    s3Writes * price.s3Write +
    s3Reads * price.s3Read;
  const writesByItem = Object.fromEntries([...counter.writesByItem].map(([k, v]) => [k, per(v)]));
  return { label, tasks, requests, api, queueMessages, itemBytes, writesByItem, writeUnits, readUnits, dollarsPer1000: dollars * 1000 };
}

export function taskCostReport(results: TaskCost[]): string {
  const label = (r: TaskCost) => (results.filter((o) => o.label === r.label).length > 1 ? `${r.label}, ${r.tasks} tasks` : r.label);
  const ops = [...new Set(results.flatMap((r) => Object.keys(r.requests)))].sort();
  const f = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
  const rows = [
    ...ops.map((op) => [op, ...results.map((r) => f(r.requests[op] ?? 0))]),
    ['API requests (submit + callbacks; client reads not included)', ...results.map((r) => f(Object.values(r.api).reduce((n, a) => n + a.count, 0)))],
    ['queue messages (one worker invocation each)', ...results.map((r) => f(r.queueMessages))],
    ['DynamoDB writes by item', ...results.map((r) => Object.entries(r.writesByItem).map(([k, v]) => `${k} ${f(v)}`).join(', '))],
    ['task item size (bytes)', ...results.map((r) => String(r.itemBytes))],
    ['DynamoDB write units (estimated from item sizes)', ...results.map((r) => f(r.writeUnits))],
    ['DynamoDB read units', ...results.map((r) => f(r.readUnits))],
    ['wall time per task (ms; 10 submits at a time, ≤ 200 unfinished, one process)', ...results.map((r) => (r.msPerTask === undefined ? 'n/a' : r.msPerTask.toFixed(1)))],
    ['$ per 1,000 tasks (API, Lambda requests and API compute, DynamoDB, SQS, S3 requests)', ...results.map((r) => `$${r.dollarsPer1000.toFixed(4)}`)],
  ];
  return [
    `### The AWS requests of one successful task (means over each run's tasks, submit to webhook)`,
    '',
    table(['per task', ...results.map(label)], rows),
    '',
    'Not counted: the archive and other queue workers\' compute (the archive takes as long as the download),',
    'S3 storage, CloudWatch logs and metrics, data transfer, and each client read (1 API request, 1–2 DynamoDB reads).',
    'Secrets Manager: read once per Lambda container and cached, so no read per task.',
  ].join('\n');
}

/** Requests per task by service (the operations of each summed), as the flatness table compares them. */
function byService(r: TaskCost): [string, number][] {
  const sum = (prefix: string) => Object.entries(r.requests).reduce((n, [k, v]) => (k.startsWith(prefix) ? n + v : n), 0);
  const api = Object.values(r.api).reduce((n, a) => n + a.count, 0);
  return [
    ['DynamoDB requests', sum('DynamoDB ')],
    ['DynamoDB write units', r.writeUnits],
    ['SQS requests (sends on the wire)', sum('SQS ')],
    ['S3 requests', sum('S3 ')],
    ['API requests', api],
    ['Lambda invocations (API requests + queue messages)', api + r.queueMessages],
  ];
}

/**
 * The same kind of task at two sizes of run side by side: per-task wall time and requests
 * by service, with the ratio of the larger run to the smaller (1.00× is flat), and what each
 * run found at its end.
 */
export function taskCostFlatness(results: TaskCost[]): string {
  const pairs = results.flatMap((small, i) => results.slice(i + 1).filter((big) => big.label === small.label && big.tasks > small.tasks).map((big) => [small, big] as const));
  const f = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
  return pairs
    .map(([small, big]) => {
      const a = byService(small);
      const b = new Map(byService(big));
      const rows = [
        ['wall time per task (ms)', (small.msPerTask ?? NaN).toFixed(1), (big.msPerTask ?? NaN).toFixed(1), ratio(big.msPerTask ?? NaN, small.msPerTask ?? NaN)],
        ...a.map(([k, v]) => [k, f(v), f(b.get(k) ?? 0), ratio(b.get(k) ?? 0, v)]),
      ];
      const found = (r: TaskCost) =>
        r.verified ? `${r.verified.final} final, ${r.verified.succeeded} succeeded, ${r.verified.objects} objects, ${r.verified.events} S3 events (${r.verified.oneEvent} tasks with exactly one)` : 'n/a';
      return [
        `### Flat from ${small.tasks.toLocaleString('en')} to ${big.tasks.toLocaleString('en')} tasks: ${small.label}, per task`,
        '',
        table(['per task', `${small.tasks} tasks`, `${big.tasks} tasks`, 'ratio'], rows),
        '',
        `Nothing lost: ${small.tasks} tasks: ${found(small)}; ${big.tasks} tasks: ${found(big)}.`,
      ].join('\n');
    })
    .join('\n\n');
}
