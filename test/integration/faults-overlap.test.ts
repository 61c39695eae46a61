import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReconcileSummary } from '../../lambdas/shared/core/reconcile';
import { lambdaContext } from '../../local/http-adapter';
import {
  deliveriesFor,
  eventually,
  queuesSettled,
  submitOk,
  upstreamStats,
  upstreamTasksFor,
  videoEventsFor,
  startFaultStage,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness, HookReceiver } from './helpers';

/**
 * Issue 14, point 1: however many workers try to hand one task to the upstream at once
 * (overlapping reconcile runs, a reconcile run racing the client's own submit), the upstream
 * gets one job. Reconcile runs are invoked side by side, as EventBridge does when a run is
 * slow or an event is delivered twice; the local schedule itself never overlaps them.
 */

/**
 * A loopback proxy in front of the simulated upstream that holds each submit for `delayMs`
 * before passing it on: an upstream that is slow to accept, so that workers overlap.
 */
async function startSlowUpstreamProxy() {
  const state = { target: '', delayMs: 0, submits: [] as string[] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const isSubmit = req.method === 'POST' && req.url === '/v1/videos/generations';
      if (isSubmit) {
        state.submits.push(body.toString('utf8'));
        await new Promise((r) => setTimeout(r, state.delayMs));
      }
      try {
        const answer = await fetch(`${state.target}${req.url}`, {
          method: req.method,
          headers: Object.fromEntries(
            ['authorization', 'content-type'].flatMap((h) => (req.headers[h] ? [[h, String(req.headers[h])]] : [])),
          ),
          body: req.method === 'POST' ? body : undefined,
        });
        const headers = Object.fromEntries([...answer.headers].filter(([h]) => ['content-type', 'retry-after'].includes(h)));
        res.writeHead(answer.status, headers).end(Buffer.from(await answer.arrayBuffer()));
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

let h: Harness;
let ops: Backstage;
let hooks: HookReceiver;
let stage: FaultStage;
let proxy: Awaited<ReturnType<typeof startSlowUpstreamProxy>>;
let reconcileHandler: (event: unknown, context: unknown) => Promise<ReconcileSummary>;

beforeAll(async () => {
  proxy = await startSlowUpstreamProxy();
  stage = await startFaultStage({
    renderMs: 200,
    env: { RESUBMIT_BASE_SECONDS: '1', UPSTREAM_TIMEOUT_MS: '5000', UPSTREAM_BASE_URL: proxy.url },
  });
  ({ h, ops, hooks } = stage);
  proxy.state.target = h.gw.upstream.url;
  // The very handler the gateway's schedule runs (the same module, configured by the gateway).
  reconcileHandler = (await import('../../lambdas/reconcile/handler')).handler as typeof reconcileHandler;
});

afterAll(async () => {
  await stage?.close();
  await proxy?.close();
});

const reconcileRun = () => reconcileHandler({}, lambdaContext('reconcile', 300_000));

/** The task id in the callback URL of a submit the upstream received. */
const taskIdOf = (submitBody: string) => /\/callbacks\/upstream\/(task_[\w-]+)/.exec(JSON.parse(submitBody).callback_url)![1]!;

/** A task the upstream refused once (503), due for resubmission now. */
async function queuedAndDue(prompt: string): Promise<string> {
  h.gw.upstream.setFaults({ submit: '503' });
  const id = await submitOk(h, { prompt, callback_url: hooks.url });
  h.gw.upstream.setFaults({});
  expect(await ops.item(id)).toMatchObject({ state: 'queued', submit_attempts: 1 });
  await eventually('the resubmit backoff to pass', async () => ((await ops.item(id)).due_at <= Date.now() ? true : undefined), 5000);
  return id;
}

/** The task succeeds once: one S3 event, one webhook delivery. */
async function succeedsOnce(id: string) {
  const done = await h.waitForStatus(id, 'succeeded', 15_000);
  expect(done.video.sha256).toMatch(/^[0-9a-f]{64}$/);
  await eventually('the webhook', () => deliveriesFor(hooks.deliveries, id)[0]);
  await queuesSettled(h);
  expect(videoEventsFor(h, id)).toHaveLength(1);
  expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
}

describe('workers that overlap on one task', () => {
  it('five reconcile runs at once resubmit a queued task once: one upstream job', async () => {
    const prompt = 'a lighthouse at dusk, five reconcilers';
    const id = await queuedAndDue(prompt);
    const before = upstreamStats(h);

    const runs = await Promise.all(Array.from({ length: 5 }, reconcileRun));
    expect(runs.map((r) => r.resubmitted).reduce((a, b) => a + b)).toBe(1);
    expect(runs.map((r) => r.errors)).toEqual([0, 0, 0, 0, 0]);
    expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(1);
    expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
    const item = await ops.item(id);
    expect(item.upstream_id).toBe(upstreamTasksFor(h, prompt)[0]!.id);
    expect(item.submit_lease_until).toBeUndefined();
    await succeedsOnce(id);
  });

  it('reconcile runs that overlap a slow upstream accept (1 s) still make one job', async () => {
    proxy.state.delayMs = 1000;
    try {
      const prompt = 'a heron in reeds, slow upstream';
      const id = await queuedAndDue(prompt);
      const before = upstreamStats(h);
      // A second run starts while the first is still waiting for the upstream, as a minutely schedule does.
      const first = reconcileRun();
      await eventually('the first run to reach the upstream', () => (proxy.state.submits.some((b) => taskIdOf(b) === id && b.includes(prompt)) ? true : undefined));
      const second = await reconcileRun();
      const firstRun = await first;
      expect([firstRun.resubmitted, second.resubmitted]).toEqual([1, 0]);
      expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(1);
      expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
      await succeedsOnce(id);
    } finally {
      proxy.state.delayMs = 0;
    }
  });

  it('a reconcile run that finds a task due while its own submit is still waiting on the upstream leaves it alone', async () => {
    proxy.state.delayMs = 1000;
    try {
      const prompt = 'a paper boat, submit racing reconcile';
      const seen = proxy.state.submits.length;
      const submitting = submitOk(h, { prompt, callback_url: hooks.url });
      const body = await eventually('the submit to reach the upstream', () => proxy.state.submits.slice(seen).find((b) => b.includes(prompt)));
      const id = taskIdOf(body);
      // As a reconcile run sees the task when the submit is slower than its due time.
      await ops.setAttributes(id, { due_at: Date.now() - 1 });
      const run = await reconcileRun();
      expect(run.resubmitted).toBe(0);
      expect(await submitting).toBe(id);
      expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
      expect(proxy.state.submits.slice(seen).filter((b) => b.includes(prompt))).toHaveLength(1);
      await succeedsOnce(id);
    } finally {
      proxy.state.delayMs = 0;
    }
  });

  it('a submit whose worker died is resubmitted once its claim has run out, not before', async () => {
    const prompt = 'a kite over dunes, worker died mid-submit';
    const id = await queuedAndDue(prompt);
    // A worker claimed the task and died before the upstream answered.
    await ops.setAttributes(id, { submit_lease_until: Date.now() + 1500, due_at: Date.now() - 1 });
    expect((await reconcileRun()).resubmitted).toBe(0);
    expect(upstreamTasksFor(h, prompt)).toHaveLength(0);
    await eventually('the claim to run out', async () => ((await ops.item(id)).submit_lease_until < Date.now() ? true : undefined), 5000);
    expect((await reconcileRun()).resubmitted).toBe(1);
    expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
    await succeedsOnce(id);
  });
});
