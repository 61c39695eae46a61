import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { TaskStore, openTaskItems } from '../lambdas/shared/task-store';
import { localCredentials } from '../local/embedded-aws';
import { startLocalGateway, type LocalGateway } from '../local/gateway';
import { videoSha256 } from '../local/mp4';

/**
 * The load test of issue 3, point 8, shared by `npm run load` and its short version in
 * `npm test`: valid submits from many connections against a fresh local gateway whose
 * simulated upstream refuses a share of submits (503) and drops a share of callbacks, then,
 * once everything has settled, a check that nothing was lost and nothing doubled.
 */

export interface LoadOptions {
  connections: number;
  durationSeconds: number;
  /** Share of upstream submits answered 503 (the task stays queued; reconcile resubmits it). */
  failSubmitRate: number;
  /** Share of tasks whose upstream callbacks never arrive (reconcile polls them). */
  dropCallbackRate: number;
  /** Share of tasks the upstream fails to render (they end `failed`, with a webhook too). */
  failRenderRate?: number;
  /** Simulated render time; default 300 ms. */
  renderMs?: number;
  /** Seed of the upstream's fault choices; default 1. */
  seed?: number;
  /** How long to wait for every task to settle after the load; default 120 s. */
  drainTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  average: number;
}

export interface LoadReport {
  options: Required<Omit<LoadOptions, 'log'>>;
  requests: {
    total: number;
    perSecond: number;
    ok: number;
    non2xx: number;
    byStatus: Record<string, number>;
    errors: number;
    timeouts: number;
    latencyMs: Percentiles;
  };
  upstream: { submitsReceived: number; submitsRefused: number; statusPolls: number; callbacksDropped: number; renderFailures: number };
  tasks: {
    answered: number;
    inTable: number;
    /** Recorded but never answered: requests cut off when the load stopped. */
    recordedUnanswered: number;
    succeeded: number;
    failed: number;
    failedBy: Record<string, number>;
    notTerminal: number;
    resubmitted: number;
  };
  videos: { objects: number; s3Events: number; verified: number };
  webhooks: { deliveries: number; verified: number; tasksNotified: number; duplicates: number };
  drainSeconds: number;
  /** Whether every task settled within `drainTimeoutMs` (the checks then judge a still moving system). */
  settled: boolean;
  /** Every broken invariant, with examples; empty when all hold. */
  violations: string[];
}

// autocannon ships no types, and what the runner needs (requests, hooks) is more than a shared
// declaration would want to promise: a local view of its API, loaded through require.
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest;
  onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
}
interface AutocannonHistogram {
  average: number;
  max: number;
  total: number;
  p50: number;
  p90: number;
  p99: number;
}
interface AutocannonResult {
  duration: number;
  requests: AutocannonHistogram;
  latency: AutocannonHistogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  requests: AutocannonRequest[];
}) => PromiseLike<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Delivery {
  path: string;
  webhookId: string;
  verified: boolean;
  /** From the verified payload. */
  taskId?: string;
  status?: string;
}

/** A webhook receiver on loopback: verifies every Standard Webhooks signature and records what came. */
async function startReceiver(secret: string) {
  const deliveries: Delivery[] = [];
  const verifier = new Webhook(secret);
  const header = (h: IncomingHttpHeaders, name: string) => String(h[name] ?? '');
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const delivery: Delivery = { path: req.url ?? '', webhookId: header(req.headers, 'webhook-id'), verified: false };
      try {
        const payload = verifier.verify(body, {
          'webhook-id': header(req.headers, 'webhook-id'),
          'webhook-timestamp': header(req.headers, 'webhook-timestamp'),
          'webhook-signature': header(req.headers, 'webhook-signature'),
        }) as { id?: unknown; status?: unknown };
        Object.assign(delivery, { verified: true, taskId: String(payload.id), status: String(payload.status) });
      } catch {
        // recorded as unverified; the check below reports it
      }
      deliveries.push(delivery);
      res.writeHead(delivery.verified ? 200 : 400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface TaskItem {
  id: string;
  state: string;
  callback_url?: string;
  upstream_id?: string;
  submit_attempts: number;
  video_key?: string;
  video_sha256?: string;
  video_bytes?: number;
  error_code?: string;
  notify_status?: string;
}

interface TaskViewPart {
  id: string;
  status: string;
  video: { url: string; sha256: string; bytes: number } | null;
}

/** Collect every broken invariant under one heading, with a few examples each. */
class Violations {
  readonly list: string[] = [];
  add(what: string, examples: unknown[]) {
    if (examples.length === 0) return;
    const shown = examples.slice(0, 5).map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
    this.list.push(`${what}: ${examples.length} (e.g. ${shown.join('; ')})`);
  }
}

function percentiles(h: AutocannonHistogram): Percentiles {
  return { p50: h.p50, p90: h.p90, p99: h.p99, max: h.max, average: Math.round(h.average * 100) / 100 };
}

/** Map with bounded parallelism. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export async function runLoad(input: LoadOptions): Promise<LoadReport> {
  const options = {
    failRenderRate: 0,
    renderMs: 300,
    seed: 1,
    drainTimeoutMs: 120_000,
    ...input,
  };
  const log = input.log ?? (() => undefined);
  // The gateway's per-task warnings (a refused submit, a silent task) are expected here by
  // the thousand; errors still show. The SDK's Node-version notice is noise on this machine.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const dataDir = mkdtempSync(join(tmpdir(), 'vtg-load-'));
  let gw: LocalGateway | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  try {
    gw = await startLocalGateway({
      dataDir,
      renderMs: options.renderMs,
      upstream: {
        failSubmitRate: options.failSubmitRate,
        dropCallbackRate: options.dropCallbackRate,
        failRenderRate: options.failRenderRate,
        seed: options.seed,
      },
      // Resubmit after ~1 s and poll a task after 1 s of silence, so a run settles in seconds;
      // a circuit that a streak of refusals opens is probed again after 2 s, not a minute.
      env: { SILENT_AFTER_SECONDS: '1', RESUBMIT_BASE_SECONDS: '1', CIRCUIT_COOL_DOWN_SECONDS: '2' },
      queueTimeScale: 0.01,
      reconcileEveryMs: 1000,
    });
    receiver = await startReceiver(gw.webhookSecret);
    return await loadAndCheck(gw, receiver, options, log);
  } finally {
    await receiver?.close();
    await gw?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function loadAndCheck(
  gw: LocalGateway,
  receiver: Awaited<ReturnType<typeof startReceiver>>,
  options: Required<Omit<LoadOptions, 'log'>>,
  log: (line: string) => void,
): Promise<LoadReport> {
  const violations = new Violations();
  const answeredIds: string[] = [];
  const badAnswers: string[] = [];
  let counter = 0;

  log(`load: ${options.connections} connections for ${options.durationSeconds} s against ${gw.url}`);
  const result = await autocannon({
    url: gw.url,
    connections: options.connections,
    duration: options.durationSeconds,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/v1/videos/generations',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.apiKey}` },
        // Every submit its own prompt and its own callback_url, so each webhook can be matched to its task.
        setupRequest: (request) => {
          const n = counter++;
          return {
            ...request,
            body: JSON.stringify({ model: 'sora-2', prompt: `load test ${n}`, callback_url: `${receiver.url}/hook/${n}` }),
          };
        },
        onResponse: (status, body) => {
          if (status !== 200) {
            badAnswers.push(`${status} ${body.slice(0, 200)}`);
            return;
          }
          try {
            answeredIds.push(String((JSON.parse(body) as { id: unknown }).id));
          } catch {
            badAnswers.push(`200 with a body that is not JSON: ${body.slice(0, 200)}`);
          }
        },
      },
    ],
  });
  const loadEnded = Date.now();
  log(`load: ${result.requests.total} requests, ${answeredIds.length} ids; draining`);

  // Settle: every task terminal and its webhook delivered (the task leaves the reconciler's
  // index), nothing left in the queues. Reconcile runs on its schedule; nudge it too.
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials }),
  );
  const s3 = new S3Client({ endpoint: gw.endpoints.s3, region: 'us-east-1', credentials: localCredentials, forcePathStyle: true });
  try {
    const deadline = loadEnded + options.drainTimeoutMs;
    let open = Number.NaN;
    let settled = false;
    let lastLog = 0;
    for (;;) {
      await gw.reconcileNow();
      open = await countOpen(db, gw.tableName);
      const queued = (['archive', 'notify'] as const).reduce((n, q) => {
        const c = gw.sqs.counts(q);
        return n + c.visible + c.delayed + c.inFlight;
      }, 0);
      if (open === 0 && queued === 0) {
        settled = true;
        break;
      }
      if (Date.now() > deadline) {
        violations.add(`tasks still open ${options.drainTimeoutMs / 1000} s after the load`, [`${open} open, ${queued} queue messages`]);
        break;
      }
      if (Date.now() - lastLog > 5000) {
        const stragglers = open <= 5 ? ` (${(await openTasks(db, gw.tableName)).map(describeOpen).join('; ')})` : '';
        log(`draining: ${open} tasks open, ${queued} queue messages${stragglers}`);
        lastLog = Date.now();
      }
      await sleep(250);
    }
    await gw.sqs.drain({ timeoutMs: 10_000 }).catch(() => undefined);
    const drainSeconds = (Date.now() - loadEnded) / 1000;
    log(`${settled ? 'settled' : 'gave up waiting'} after ${drainSeconds.toFixed(1)} s; checking`);

    // ---- the invariants ----
    const items = await scanTasks(db, gw.tableName);
    const byId = new Map(items.map((t) => [t.id, t]));
    violations.add('answers other than 200 to valid submits', badAnswers);
    violations.add(
      'queue messages given up (dead-letter queue)',
      (['archive', 'notify'] as const).filter((q) => gw.sqs.counts(q).dlq > 0).map((q) => `${q}: ${gw.sqs.counts(q).dlq}`),
    );
    if (result.errors || result.timeouts)
      violations.add('connection errors or timeouts', [`${result.errors} errors, ${result.timeouts} timeouts`]);
    violations.add(
      '200 ids answered twice',
      answeredIds.filter((id, i) => answeredIds.indexOf(id) !== i),
    );
    violations.add('200 ids missing from the table', answeredIds.filter((id) => !byId.has(id)));
    violations.add(
      'tasks not terminal',
      items.filter((t) => t.state !== 'succeeded' && t.state !== 'failed').map((t) => `${t.id} ${t.state}`),
    );

    const succeeded = items.filter((t) => t.state === 'succeeded');
    const failed = items.filter((t) => t.state === 'failed');

    // Videos: one object per succeeded task and no other, one S3 event each, the bytes the upstream rendered.
    const objects = await listVideoKeys(s3, gw.bucketName);
    const objectSet = new Set(objects);
    violations.add('succeeded tasks without their object', succeeded.filter((t) => !objectSet.has(`videos/${t.id}.mp4`)).map((t) => t.id));
    const succeededKeys = new Set(succeeded.map((t) => `videos/${t.id}.mp4`));
    violations.add('objects of tasks that did not succeed', objects.filter((k) => !succeededKeys.has(k)));
    const events = new Map<string, number>();
    for (const e of gw.s3Events) events.set(e.s3.object.key, (events.get(e.s3.object.key) ?? 0) + 1);
    violations.add(
      'succeeded tasks without exactly one S3 event',
      succeeded.filter((t) => events.get(`videos/${t.id}.mp4`) !== 1).map((t) => `${t.id}: ${events.get(`videos/${t.id}.mp4`) ?? 0}`),
    );
    violations.add('S3 events for keys of no succeeded task', [...events.keys()].filter((k) => !succeededKeys.has(k)));

    const views = await listViews(gw);
    violations.add('tasks in the table the list endpoint does not show', items.filter((t) => !views.has(t.id)).map((t) => t.id));
    const videoProblems: string[] = [];
    let videosVerified = 0;
    await mapLimit(succeeded, 16, async (task) => {
      const view = views.get(task.id);
      if (!view?.video) return videoProblems.push(`${task.id}: the view has no video`);
      const response = await fetch(view.video.url);
      const bytes = Buffer.from(await response.arrayBuffer());
      const sha = createHash('sha256').update(bytes).digest('hex');
      const upstream = task.upstream_id ? gw.upstream.tasks.get(task.upstream_id) : undefined;
      const rendered = upstream ? videoSha256({ taskId: upstream.id, ...upstream.video }) : undefined;
      if (response.status !== 200) videoProblems.push(`${task.id}: download answered ${response.status}`);
      else if (sha !== view.video.sha256 || sha !== task.video_sha256) videoProblems.push(`${task.id}: sha256 ${sha} but the task says ${view.video.sha256}`);
      else if (sha !== rendered) videoProblems.push(`${task.id}: sha256 ${sha} is not the upstream's video (${rendered ?? 'unknown upstream task'})`);
      else if (bytes.length !== view.video.bytes) videoProblems.push(`${task.id}: ${bytes.length} bytes but the task says ${view.video.bytes}`);
      else videosVerified++;
      return undefined;
    });
    violations.add('videos that do not match', videoProblems);

    // Webhooks: per callback_url exactly one verified event (by webhook-id) for the task's terminal status.
    const byPath = new Map<string, Delivery[]>();
    for (const d of receiver.deliveries) byPath.set(d.path, [...(byPath.get(d.path) ?? []), d]);
    violations.add('webhooks whose signature did not verify', receiver.deliveries.filter((d) => !d.verified).map((d) => `${d.path} ${d.webhookId}`));
    const webhookProblems: string[] = [];
    let duplicates = 0;
    let tasksNotified = 0;
    const expectedPaths = new Set<string>();
    for (const task of items) {
      if (!task.callback_url) {
        webhookProblems.push(`${task.id}: no callback_url recorded`);
        continue;
      }
      const path = new URL(task.callback_url).pathname;
      expectedPaths.add(path);
      const got = (byPath.get(path) ?? []).filter((d) => d.verified);
      const ids = new Set(got.map((d) => d.webhookId));
      const status = task.state === 'succeeded' ? 'succeeded' : task.state === 'failed' ? 'failed' : undefined;
      if (status === undefined) continue; // reported above as not terminal
      if (ids.size === 0) webhookProblems.push(`${task.id}: no webhook`);
      else if (ids.size > 1) webhookProblems.push(`${task.id}: ${ids.size} distinct webhook-ids ${[...ids].join(', ')}`);
      else if (got.some((d) => d.taskId !== task.id || d.status !== status))
        webhookProblems.push(`${task.id} ${status}: webhook says ${got.map((d) => `${d.taskId} ${d.status}`).join(', ')}`);
      else tasksNotified++;
      duplicates += got.length - ids.size;
    }
    violations.add('callback_urls without exactly one verified event for the terminal status', webhookProblems);
    violations.add('webhooks to a callback_url no task has', [...byPath.keys()].filter((p) => !expectedPaths.has(p)));

    const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
    const simTasks = [...gw.upstream.tasks.values()];
    const answered = new Set(answeredIds);
    return {
      options,
      requests: {
        total: result.requests.total,
        perSecond: Math.round((result.requests.total / result.duration) * 10) / 10,
        ok: statusCodes['200'] ?? 0,
        non2xx: result.non2xx,
        byStatus: statusCodes,
        errors: result.errors,
        timeouts: result.timeouts,
        latencyMs: percentiles(result.latency),
      },
      upstream: {
        submitsReceived: gw.upstream.stats.submitsReceived,
        submitsRefused: gw.upstream.stats.submitsRefused,
        statusPolls: gw.upstream.stats.statusRequests,
        callbacksDropped: simTasks.filter((t) => t.faults.callback === 'drop').length,
        renderFailures: simTasks.filter((t) => t.faults.render === 'fail').length,
      },
      tasks: {
        answered: answered.size,
        inTable: items.length,
        recordedUnanswered: items.filter((t) => !answered.has(t.id)).length,
        succeeded: succeeded.length,
        failed: failed.length,
        failedBy: failed.reduce<Record<string, number>>((m, t) => ({ ...m, [t.error_code ?? '?']: (m[t.error_code ?? '?'] ?? 0) + 1 }), {}),
        notTerminal: items.length - succeeded.length - failed.length,
        resubmitted: items.filter((t) => t.submit_attempts > 0).length,
      },
      videos: { objects: objects.length, s3Events: gw.s3Events.length, verified: videosVerified },
      webhooks: {
        deliveries: receiver.deliveries.length,
        verified: receiver.deliveries.filter((d) => d.verified).length,
        tasksNotified,
        duplicates,
      },
      drainSeconds: Math.round(drainSeconds * 10) / 10,
      settled,
      violations: violations.list,
    };
  } finally {
    db.destroy();
    s3.destroy();
  }
}

/** Tasks the gateway still owes work (not terminal, or webhook not yet delivered), in every due-index shard. */
async function countOpen(db: DynamoDBDocumentClient, table: string): Promise<number> {
  let count = 0;
  for await (const _ of openTaskItems(db, table)) count++;
  return count;
}

const openTasks = async (db: DynamoDBDocumentClient, table: string): Promise<(TaskItem & { due_at?: number })[]> =>
  (await new TaskStore(db, table).openTasks(5)) as (TaskItem & { due_at?: number })[];

const describeOpen = (t: TaskItem & { due_at?: number }) =>
  `${t.id} ${t.state}${t.notify_status ? ` notify ${t.notify_status}` : ''}, ${t.submit_attempts} failed submits, due in ${(((t.due_at ?? 0) - Date.now()) / 1000).toFixed(1)} s`;

async function scanTasks(db: DynamoDBDocumentClient, table: string): Promise<TaskItem[]> {
  const tasks: TaskItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: 'begins_with(pk, :task)',
        ExpressionAttributeValues: { ':task': 'TASK#' },
        ExclusiveStartKey: start,
        ConsistentRead: true,
      }),
    );
    tasks.push(...((page.Items ?? []) as TaskItem[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return tasks;
}

async function listVideoKeys(s3: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'videos/', ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Every task as its owner reads it, through the list endpoint, page by page. */
async function listViews(gw: LocalGateway): Promise<Map<string, TaskViewPart>> {
  const views = new Map<string, TaskViewPart>();
  let after: string | null = null;
  do {
    const query: string = after ? `&after=${encodeURIComponent(after)}` : '';
    const res = await fetch(`${gw.url}/v1/videos/generations?limit=100${query}`, { headers: { authorization: `Bearer ${gw.apiKey}` } });
    if (res.status !== 200) throw new Error(`listing tasks answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { data: TaskViewPart[]; has_more: boolean; next_cursor: string | null };
    for (const view of page.data) views.set(view.id, view);
    after = page.has_more ? page.next_cursor : null;
  } while (after);
  return views;
}

/** The report as a table for a terminal or a README. */
export function formatLoadReport(r: LoadReport): string {
  const o = r.options;
  const l = r.requests.latencyMs;
  const rows: [string, string][] = [
    ['load', `${o.connections} connections × ${o.durationSeconds} s; upstream refuses ${o.failSubmitRate * 100} % of submits (503), drops the callbacks of ${o.dropCallbackRate * 100} %, fails ${o.failRenderRate * 100} % of renders`],
    ['requests', `${r.requests.total} (${r.requests.perSecond} req/s), ${r.requests.ok} × 200, ${r.requests.non2xx} non-2xx, ${r.requests.errors} errors, ${r.requests.timeouts} timeouts`],
    ['latency (ms)', `p50 ${l.p50}, p90 ${l.p90}, p99 ${l.p99}, max ${l.max}, mean ${l.average}`],
    ['upstream', `${r.upstream.submitsReceived} submits received, ${r.upstream.submitsRefused} refused, ${r.upstream.statusPolls} status polls, ${r.upstream.callbacksDropped} tasks with dropped callbacks, ${r.upstream.renderFailures} failed renders`],
    ['tasks', `${r.tasks.inTable} in the table (${r.tasks.answered} answered 200, ${r.tasks.recordedUnanswered} cut off at the end), ${r.tasks.resubmitted} resubmitted`],
    ['outcome', `${r.tasks.succeeded} succeeded, ${r.tasks.failed} failed ${JSON.stringify(r.tasks.failedBy)}, ${r.tasks.notTerminal} not terminal`],
    ['videos', `${r.videos.objects} objects, ${r.videos.s3Events} S3 events, ${r.videos.verified} downloads match sha256 and the upstream's bytes`],
    ['webhooks', `${r.webhooks.deliveries} deliveries, ${r.webhooks.verified} verified, ${r.webhooks.tasksNotified} tasks with exactly one event, ${r.webhooks.duplicates} duplicate deliveries (same webhook-id)`],
    ['drain', r.settled ? `${r.drainSeconds} s from the end of the load until every task settled` : `not settled ${r.drainSeconds} s after the load`],
    ['invariants', r.violations.length === 0 ? 'all hold' : `${r.violations.length} broken`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  return [...lines, ...r.violations.map((v) => `  BROKEN: ${v}`)].join('\n');
}
