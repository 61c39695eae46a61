import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callbackTokenOf,
  deliveriesFor,
  eventually,
  postCallback,
  queuesSettled,
  reconcileUntil,
  submitOk,
  taskView,
  upstreamStats,
  upstreamCallbacksAnswered,
  upstreamTask,
  verifiedPayload,
  videoEventsFor,
  viewWhen,
  startFaultStage,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness, HookReceiver } from './helpers';

/**
 * Issue 3, points 1 and 4: callbacks lost, repeated, late, forged or in words the gateway
 * does not know; and the deadline that no task outlives.
 */

const DEADLINE_SECONDS = 4;

let h: Harness;
let ops: Backstage;
let hooks: HookReceiver;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({
    renderMs: 300,
    env: {
      RESUBMIT_BASE_SECONDS: '1',
      TASK_DEADLINE_SECONDS: String(DEADLINE_SECONDS),
      ARCHIVE_MAX_ATTEMPTS: '3',
    },
  });
  ({ h, ops, hooks } = stage);
});

afterAll(() => stage?.close());

/** A succeeded callback body in the upstream's dialect. */
const succeededBody = (upstreamId: string, url = 'http://127.0.0.1:9/forged.mp4') => ({
  id: upstreamId,
  state: 'succeeded',
  progress: 100,
  data: { videos: [{ url }] },
  message: '',
});

describe('lost and repeated callbacks', () => {
  it('a task whose callbacks are all lost is polled by reconcile once silent, and still succeeds', async () => {
    const before = upstreamStats(h);
    const id = await submitOk(h, { prompt: 'a paper boat, callbacks dropped sim:drop', callback_url: hooks.url });
    const submitted = await ops.item(id);
    expect(submitted.state).toBe('submitted');
    const sim = upstreamTask(h, submitted.upstream_id);
    await eventually('the upstream to finish rendering', () => (sim.state === 'succeeded' ? true : undefined));
    expect(sim.callbacks).toEqual([]);
    expect((await taskView(h, id)).status).toBe('in_progress');

    const done = await reconcileUntil(h, `task ${id} to succeed`, viewWhen(h, id, 'succeeded'));
    expect(h.gw.upstream.stats.statusRequests).toBeGreaterThan(before.statusRequests);
    expect(done.video.bytes).toBe(sim.video.bytes);
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([`videos/${id}.mp4`]);
    const delivery = await h.waitFor('the webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'succeeded' });
    expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
  });

  it('a final callback sent twice and a stale "running" one after it give one object, one S3 event, one webhook, and the task stays succeeded', async () => {
    const id = await submitOk(h, { prompt: 'a spinning top, callbacks repeated sim:duplicate', callback_url: hooks.url });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    const done = await h.waitForStatus(id, 'succeeded');
    // Wait for the three late callbacks (final, final again, stale running) to have been answered, and the work they caused.
    await eventually('the repeated callbacks', () => (sim.callbacks.length >= 4 ? true : undefined));
    await eventually('the callbacks to be answered', () => (upstreamCallbacksAnswered(h) ? true : undefined));
    expect(sim.callbacks.map((c) => c.state)).toEqual(['running', 'succeeded', 'succeeded', 'running']);
    await h.waitFor('the webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    await queuesSettled(h);

    const after = await taskView(h, id);
    expect(after).toMatchObject({ status: 'succeeded', progress: 100, video: { sha256: done.video.sha256, bytes: done.video.bytes } });
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([`videos/${id}.mp4`]);
    expect(videoEventsFor(h, id)).toHaveLength(1);
    const deliveries = deliveriesFor(hooks.deliveries, id);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.headers['webhook-id']).toBe(`${id}.succeeded`);
    const item = await ops.item(id);
    expect(item).toMatchObject({ state: 'succeeded', notify_status: 'delivered', notify_attempts: 1, archive_attempts: 1 });
  });

  it('a failure whose callback was lost is found by polling: the task fails with upstream_failed', async () => {
    const id = await submitOk(h, { prompt: 'a melting clock sim:fail sim:drop', callback_url: hooks.url });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    await eventually('the upstream to fail the render', () => (sim.state === 'error' ? true : undefined));
    expect(sim.callbacks).toEqual([]);
    const failed = await reconcileUntil(h, `task ${id} to fail`, viewWhen(h, id, 'failed'));
    expect(failed.error).toEqual({ code: 'upstream_failed', message: 'simulated render failure: the video could not be generated' });
    const delivery = await h.waitFor('the failure webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'failed', error: { code: 'upstream_failed' } });
  });

  it('an unknown state word from the upstream is treated as still running, not as a failure', async () => {
    const id = await submitOk(h, { prompt: 'a slow glacier sim:state=weird sim:render=1500' });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);

    const running = await eventually('the progress callback', async () => {
      const item = await ops.item(id);
      return item.state === 'in_progress' ? item : undefined;
    });
    const word = sim.callbacks[0]!;
    expect(word.state).toBe('queued_for_gpu');
    expect(word.progress).toBeGreaterThanOrEqual(50);
    expect(running.progress).toBe(word.progress);
    expect(await taskView(h, id)).toMatchObject({ status: 'in_progress', state: 'running', progress: word.progress, error: null });

    // A poll answering the same unknown word leaves the task running too.
    await ops.setAttributes(id, { due_at: Date.now() - 1 });
    const polls = h.gw.upstream.stats.statusRequests;
    await h.gw.reconcileNow();
    expect(h.gw.upstream.stats.statusRequests).toBeGreaterThan(polls);
    expect((await ops.item(id)).state).toBe('in_progress');

    const done = await h.waitForStatus(id, 'succeeded');
    expect(done.error).toBeNull();
  });

  it('upstream failure fails the task with upstream_failed and the upstream\'s message, and the webhook says so', async () => {
    const id = await submitOk(h, { prompt: 'an impossible staircase sim:fail', callback_url: hooks.url });
    const failed = await h.waitForStatus(id, 'failed');
    expect(failed).toMatchObject({
      status: 'failed',
      state: 'error',
      error: { code: 'upstream_failed', message: 'simulated render failure: the video could not be generated' },
      message: 'simulated render failure: the video could not be generated',
      video: null,
    });
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([]);
    const delivery = await h.waitFor('the failure webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    expect(delivery.headers['webhook-id']).toBe(`${id}.failed`);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'failed', error: { code: 'upstream_failed' } });
  });
});

describe('callbacks that must change nothing', () => {
  it('a forged callback (wrong token, no token, another task\'s token) is 401 and leaves the task as it was', async () => {
    const target = await submitOk(h, { prompt: 'a locked vault sim:render=stall' });
    const other = await submitOk(h, { prompt: 'an open door sim:render=stall' });
    const targetUpstream = (await ops.item(target)).upstream_id as string;
    const otherToken = callbackTokenOf(h, (await ops.item(other)).upstream_id);
    const realToken = callbackTokenOf(h, targetUpstream);
    await eventually('the half-way progress callback', async () => ((await ops.item(target)).state === 'in_progress' ? true : undefined));
    const before = await ops.item(target);

    const forgeries: [string, string | undefined][] = [
      ['wrong token of the right length', realToken.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))],
      ['a short wrong token', 'not-the-token'],
      ['no token', undefined],
      ['an empty token', ''],
      ["another task's token", otherToken],
    ];
    for (const [what, token] of forgeries) {
      const res = await postCallback(h, target, token, succeededBody(targetUpstream));
      expect(res.status, what).toBe(401);
      expect(await res.json(), what).toEqual({ error: { code: 'unauthorized', type: 'authentication_error', message: 'bad callback token' } });
    }
    expect(await ops.item(target)).toEqual(before);
    expect(await ops.objectKeys(`videos/${target}`)).toEqual([]);
  });

  it('a callback with the right token but naming another upstream task is refused with 409 and changes nothing', async () => {
    const id = await submitOk(h, { prompt: 'a mirrored hall sim:render=stall sim:drop' });
    const before = await ops.item(id);
    expect(before.state).toBe('submitted');
    const token = callbackTokenOf(h, before.upstream_id);
    const res = await postCallback(h, id, token, succeededBody('sim_someone_else'));
    expect(res.status).toBe(409);
    expect(((await res.json()) as any).error.code).toBe('conflict');
    expect(await ops.item(id)).toEqual(before);
  });

  it('a second callback for a finished task changes nothing', async () => {
    const id = await submitOk(h, { prompt: 'a kite at dusk', callback_url: hooks.url });
    await h.waitForStatus(id, 'succeeded');
    await h.waitFor('the webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    await queuesSettled(h);
    const before = await ops.item(id);
    const token = callbackTokenOf(h, before.upstream_id);
    const events = videoEventsFor(h, id).length;

    const late = [
      { id: before.upstream_id, state: 'error', progress: 10, data: { videos: [] }, message: 'late failure' },
      succeededBody(before.upstream_id, `${h.gw.upstream.url}/files/other.mp4`),
      { id: before.upstream_id, state: 'running', progress: 20, data: { videos: [] }, message: '' },
    ];
    for (const body of late) {
      const res = await postCallback(h, id, token, body);
      expect(res.status).toBe(200);
    }
    await queuesSettled(h);
    expect(await ops.item(id)).toEqual(before);
    expect(videoEventsFor(h, id)).toHaveLength(events);
    expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
    expect(await taskView(h, id)).toMatchObject({ status: 'succeeded', error: null });
  });
});

describe('the deadline', () => {
  it(`a render that never finishes is failed with timeout by reconcile at its deadline (${DEADLINE_SECONDS} s), not before`, async () => {
    const id = await submitOk(h, { prompt: 'an endless corridor sim:render=stall', callback_url: hooks.url });
    const { deadline_at: deadline } = await ops.item(id);
    const seen: { at: number; status: string }[] = [];
    const failed = await reconcileUntil(
      h,
      `task ${id} to time out`,
      async () => {
        const view = await taskView(h, id);
        seen.push({ at: Date.now(), status: view.status });
        return view.status === 'failed' ? view : undefined;
      },
      DEADLINE_SECONDS * 1000 + 5000,
    );
    expect(failed.error).toEqual({ code: 'timeout', message: `the task did not finish within ${DEADLINE_SECONDS} seconds` });
    expect(seen.filter((s) => s.status === 'failed').every((s) => s.at >= deadline)).toBe(true);
    expect(seen.some((s) => s.status === 'in_progress')).toBe(true);
    const delivery = await h.waitFor('the timeout webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
    expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'failed', error: { code: 'timeout' } });
  }, 15_000);

  it('after every deadline has passed, no task of this gateway is left unfinished, whatever the upstream did', async () => {
    const ids = [
      await submitOk(h, { prompt: 'silent and stuck sim:render=stall sim:drop' }),
      await submitOk(h, { prompt: 'polls fail sim:render=stall sim:drop sim:poll=500' }),
      await submitOk(h, { prompt: 'upstream forgot it sim:render=stall sim:drop sim:poll=404' }),
    ];
    h.gw.upstream.setFaults({ submit: '503' });
    ids.push(await submitOk(h, { prompt: 'never accepted' }));
    try {
      const items = await Promise.all(ids.map((id) => ops.item(id)));
      const lastDeadline = Math.max(...items.map((i) => i.deadline_at));
      await reconcileUntil(h, 'every deadline to pass', async () => (Date.now() > lastDeadline ? true : undefined), DEADLINE_SECONDS * 1000 + 5000, 250);
      await h.gw.reconcileNow();
      await queuesSettled(h);
    } finally {
      h.gw.upstream.setFaults({});
    }

    for (const id of ids) expect((await taskView(h, id)).error, id).toMatchObject({ code: 'timeout' });
    const all = (await (await h.api('/v1/videos/generations?limit=100')).json()) as { data: { id: string; status: string }[] };
    expect(all.data.length).toBeGreaterThanOrEqual(ids.length);
    expect(all.data.filter((t) => t.status !== 'succeeded' && t.status !== 'failed')).toEqual([]);
  }, 15_000);
});
