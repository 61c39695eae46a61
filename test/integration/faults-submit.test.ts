import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  deliveriesFor,
  queuesSettled,
  reconcileUntil,
  submitOk,
  taskView,
  upstreamStats,
  upstreamTask,
  upstreamTasksFor,
  verifiedPayload,
  videoEventsFor,
  viewWhen,
  startFaultStage,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness, HookReceiver } from './helpers';

/**
 * Issue 3, point 3: the upstream down, slow or refusing at submit. The client keeps its id
 * whenever the request was recorded; reconcile resubmits with backoff, honouring Retry-After;
 * a permanent refusal fails the task with the upstream's reason.
 */

const UPSTREAM_TIMEOUT_MS = 500;
const AMBIGUOUS_WAIT_SECONDS = 3;

let h: Harness;
let ops: Backstage;
let hooks: HookReceiver;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({
    renderMs: 200,
    env: {
      RESUBMIT_BASE_SECONDS: '1',
      UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
      AMBIGUOUS_WAIT_SECONDS: String(AMBIGUOUS_WAIT_SECONDS),
    },
  });
  ({ h, ops, hooks } = stage);
});

afterEach(() => h.gw.upstream.setFaults({}));

afterAll(() => stage?.close());

describe('the upstream refuses or fails the submit', () => {
  it('a content-policy refusal is a 400 upstream_rejected with the upstream\'s reason, the task fails with it and the webhook says so', async () => {
    const before = upstreamStats(h);
    const res = await h.submit({ model: 'sora-2', prompt: 'forbidden scene sim:reject', callback_url: hooks.url });
    expect(res.status).toBe(400);
    const id = res.headers.get('x-task-id');
    expect(id).toMatch(/^task_/);
    const body = (await res.json()) as any;
    expect(body).toEqual({ error: { code: 'upstream_rejected', type: 'invalid_request_error', message: expect.stringContaining('prompt violates content policy') } });

    const view = await taskView(h, id!);
    expect(view).toMatchObject({
      id,
      status: 'failed',
      state: 'error',
      error: { code: 'upstream_rejected', message: body.error.message },
      message: body.error.message,
      video: null,
    });

    const delivery = await h.waitFor('the failure webhook', async () => deliveriesFor(hooks.deliveries, id!)[0]);
    expect(delivery.headers['webhook-id']).toBe(`${id}.failed`);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({
      id,
      status: 'failed',
      error: { code: 'upstream_rejected', message: body.error.message },
    });

    // A refusal is final: the reconciler does not try again.
    await h.gw.reconcileNow();
    await queuesSettled(h);
    expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(1);
    expect(h.gw.upstream.stats.submitsAccepted).toBe(before.submitsAccepted);
    expect(deliveriesFor(hooks.deliveries, id!)).toHaveLength(1);
    expect((await taskView(h, id!)).status).toBe('failed');
  });

  it.each(['503', '500', '429'] as const)(
    'an upstream answering %s still gives the client its id; the task stays queued and reconcile resubmits it to success',
    async (fault) => {
      const prompt = `a lighthouse in fog, upstream ${fault}`;
      const before = upstreamStats(h);
      h.gw.upstream.setFaults({ submit: fault });
      const t0 = Date.now();
      const id = await submitOk(h, { prompt, callback_url: hooks.url });
      h.gw.upstream.setFaults({});

      expect(await taskView(h, id)).toMatchObject({ id, status: 'queued', state: 'pending', error: null });
      const queued = await ops.item(id);
      expect(queued).toMatchObject({ state: 'queued', submit_attempts: 1, open: expect.stringMatching(/^open#\d+$/) });
      expect(queued.upstream_message).toContain(`upstream answered ${fault}`);
      expect(queued.upstream_id).toBeUndefined();

      const done = await reconcileUntil(h, `task ${id} to succeed`, viewWhen(h, id, 'succeeded'));
      const item = await ops.item(id);
      expect(item.submit_attempts).toBe(1);
      expect(item.upstream_message).toBeUndefined();
      const accepted = upstreamTask(h, item.upstream_id);
      // Resubmitted no sooner than the backoff (RESUBMIT_BASE_SECONDS = 1; 429 carries Retry-After: 1).
      expect(accepted.createdAt - t0).toBeGreaterThanOrEqual(1000);
      expect(done.video.sha256).toMatch(/^[0-9a-f]{64}$/);

      expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(2);
      expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
      expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
      expect(videoEventsFor(h, id)).toHaveLength(1);
      const delivery = await h.waitFor('the webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
      expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'succeeded' });
      await queuesSettled(h);
      expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
    },
  );

  it('a 429 with Retry-After: 3 is not resubmitted before 3 s, however often reconcile runs', async () => {
    const prompt = 'a busy harbour, rate limited';
    const before = upstreamStats(h);
    h.gw.upstream.setFaults({ submit: '429', retryAfter: 3 });
    const t0 = Date.now();
    const id = await submitOk(h, { prompt });
    h.gw.upstream.setFaults({});

    const queued = await ops.item(id);
    expect(queued.state).toBe('queued');
    expect(queued.upstream_message).toContain('upstream answered 429');
    expect(queued.due_at).toBeGreaterThanOrEqual(t0 + 3000);

    // Reconcile every 100 ms: the only resubmission happens once Retry-After has passed.
    await reconcileUntil(h, `task ${id} to succeed`, viewWhen(h, id, 'succeeded'));
    const accepted = upstreamTask(h, (await ops.item(id)).upstream_id);
    expect(accepted.createdAt - t0).toBeGreaterThanOrEqual(3000);
    expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(2);
    expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
  });

  it('while the upstream stays down, resubmissions back off exponentially', async () => {
    const before = upstreamStats(h);
    h.gw.upstream.setFaults({ submit: '503' });
    const id = await submitOk(h, { prompt: 'a storm over the plains, upstream down' });

    // The wait before each next try, as recorded with each failed one: base 1 s, doubling, ±25 % jitter (whole seconds).
    const waits: number[] = [];
    const record = async () => {
      const item = await ops.item(id);
      waits[item.submit_attempts - 1] ??= item.due_at - item.updated_at;
      return item;
    };
    await record();
    await reconcileUntil(h, 'three failed submits', async () => ((await record()).submit_attempts >= 3 ? true : undefined), 15_000);
    expect(waits).toHaveLength(3);
    expect(waits[0]).toBeGreaterThan(900);
    expect(waits[0]).toBeLessThanOrEqual(1000);
    expect(waits[1]).toBeGreaterThan(1900);
    expect(waits[1]).toBeLessThanOrEqual(3000);
    expect(waits[2]).toBeGreaterThan(2900);
    expect(waits[2]).toBeLessThanOrEqual(5000);
    expect(h.gw.upstream.stats.submitsAccepted).toBe(before.submitsAccepted);
    expect((await taskView(h, id)).status).toBe('queued');

    h.gw.upstream.setFaults({});
    await reconcileUntil(h, `task ${id} to succeed`, viewWhen(h, id, 'succeeded'), 15_000);
    expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
    expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(4);
  }, 30_000);

  it('a submit the upstream never answers still gives the client its id within the upstream timeout; the task waits out the ambiguity, then is resubmitted once', async () => {
    const prompt = 'a frozen waterfall, upstream stalls';
    const before = upstreamStats(h);
    h.gw.upstream.setFaults({ submit: 'stall' });
    const t0 = performance.now();
    const id = await submitOk(h, { prompt, callback_url: hooks.url });
    const elapsed = performance.now() - t0;
    h.gw.upstream.setFaults({});
    expect(elapsed).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT_MS - 20);
    expect(elapsed).toBeLessThan(UPSTREAM_TIMEOUT_MS + 1500);

    expect((await taskView(h, id)).status).toBe('queued');
    const queued = await ops.item(id);
    expect(queued).toMatchObject({ state: 'queued', submit_attempts: 1 });
    expect(queued.upstream_message).toBe(`upstream did not answer within ${UPSTREAM_TIMEOUT_MS} ms`);
    // The upstream may have the job (this dialect cannot be asked): nothing is sent again before the wait is over.
    expect(queued.due_at - Date.now()).toBeGreaterThan((AMBIGUOUS_WAIT_SECONDS - 1.5) * 1000);

    await reconcileUntil(h, `task ${id} to succeed`, viewWhen(h, id, 'succeeded'), 15_000);
    expect(h.gw.upstream.stats.submitsReceived - before.submitsReceived).toBe(2);
    expect(upstreamTasksFor(h, prompt)).toHaveLength(1);
    const delivery = await h.waitFor('the webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'succeeded' });
  });
});
