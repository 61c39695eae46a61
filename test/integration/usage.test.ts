import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey, keyId } from '../../lambdas/shared/api-keys';
import { config } from '../../lambdas/shared/config';
import { settleUsage } from '../../lambdas/shared/core/finish';
import { taskStore, usageStore } from '../../lambdas/shared/parts';
import { taskRecordSchema } from '../../lambdas/shared/contracts/task';
import { usageReportSchema } from '../../lambdas/shared/contracts/view';
import type { SimFaults } from '../../local/simulated-upstream';
import { main as keys } from '../../bin/keys';
import { backstage, eventually, upstreamTask, type Backstage } from './fault-helpers';
import { startHarness, type Harness } from './helpers';

/**
 * Usage and limits per key, as a client and an operator see them through the local gateway:
 * seconds reserved at submit, settled once at what the video measures, released on failure,
 * timeout and cancel; limits set with `npm run keys -- limits`, refused with 429.
 */

const DEADLINE_SECONDS = 4;
const models = {
  'sora-2': { routes: [{ upstream: 'simulated', model: 'sora-2', pricePerSecond: 0.1 }] },
  'sora-2-pro': { routes: [{ upstream: 'simulated', model: 'sora-2-pro', pricePerSecond: 0.3 }] },
};

let h: Harness;
let ops: Backstage;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  h = await startHarness({
    renderMs: 300,
    queueTimeScale: 0.01,
    env: { KEY_CACHE_SECONDS: '0', TASK_DEADLINE_SECONDS: String(DEADLINE_SECONDS), MODELS: JSON.stringify(models), SILENT_AFTER_SECONDS: '1' },
  });
  ops = backstage(h);
});
afterAll(async () => {
  ops?.close();
  await h?.close();
});

interface Client {
  key: string;
  id: string;
  submit(body: Record<string, unknown>): Promise<Response>;
  usage(query?: string): Promise<any>;
}

async function client(name: string): Promise<Client> {
  const key = await h.gw.createKey(name);
  return {
    key,
    id: keyId(hashKey(key)),
    submit: (body) =>
      h.api('/v1/videos/generations', { method: 'POST', key, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sora-2', ...body }) }),
    usage: async (query = '') => {
      const res = await h.api(`/v1/usage${query}`, { key });
      expect(res.status).toBe(200);
      return res.json();
    },
  };
}

/** `npm run keys -- limits …` on the running gateway's data directory. */
async function setLimits(id: string, ...flags: string[]) {
  let out = '';
  const code = await keys(['limits', id, ...flags, '--data-dir', h.dataDir], { out: (t) => void (out += t), err: (t) => void (out += t) });
  expect(code, out).toBe(0);
  return out;
}

async function submitted(c: Client, body: Record<string, unknown>): Promise<string> {
  const res = await c.submit(body);
  expect(res.status, await res.clone().text()).toBe(200);
  return (((await res.json()) as any) as { id: string }).id;
}

const view = async (c: Client, id: string) => (await h.api(`/v1/videos/generations/${id}`, { key: c.key })).json() as Promise<any>;
const ended = (c: Client, id: string, status: string) =>
  eventually(`${id} ${status}`, async () => {
    const v = await view(c, id);
    return v.status === status ? v : undefined;
  }, 15_000);
/** The task's usage settled (the webhook-free task leaves the reconciler's index with it). */
const settled = (id: string) => eventually(`${id} settled`, async () => ((await ops.item(id)).usage_status === 'settled' ? ops.item(id) : undefined));

describe('limits', () => {
  it('50 submits at once against a concurrency limit of 5: exactly 5 accepted, the others 429 concurrency_limit', async () => {
    const c = await client('burst');
    expect(await setLimits(c.id, '--concurrent', '5')).toMatch(/concurrent\s+5/);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => c.submit({ prompt: `burst ${i} sim:render=stall` })));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(45);
    const refused = answers.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await refused.json()) as any).toEqual({
      error: { code: 'concurrency_limit', type: 'rate_limit_error', message: 'this key may have 5 tasks open at once; try again when one has finished' },
    });
    const usage = await c.usage();
    // Nothing of a refused submit was written: five tasks, and only theirs.
    expect(usage.totals).toMatchObject({ tasks: 5, requested_seconds: 50 });
    expect(usage.in_use).toEqual({ open_tasks: 5, seconds_today: 50, seconds_this_month: 50 });
    const listed = (await (await h.api('/v1/videos/generations?limit=100', { key: c.key })).json()) as { data: unknown[] };
    expect(listed.data).toHaveLength(5);
    expect(usage.limits).toEqual({ concurrent: 5, rpm: null, seconds_per_day: null, seconds_per_month: null });
  }, 30_000);

  it('submits a minute: the next is 429 rate_limited with Retry-After up to the next minute', async () => {
    const c = await client('rate');
    await setLimits(c.id, '--rpm', '2');
    // Not across a minute boundary: all three in the same minute.
    const wait = 60_000 - (Date.now() % 60_000);
    if (wait < 5_000) await new Promise((r) => setTimeout(r, wait + 100));
    await submitted(c, { prompt: 'rate one' });
    await submitted(c, { prompt: 'rate two' });
    const third = await c.submit({ prompt: 'rate three' });
    expect(third.status).toBe(429);
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(((await third.json()) as any).error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error', message: 'this key may submit 2 tasks a minute; try again in the next minute' });
    expect((await c.usage()).totals.tasks).toBe(2);
  });

  it('seconds a day: what is still rendering counts; a failed task gives its seconds back', async () => {
    const c = await client('quota');
    await setLimits(c.id, '--seconds-per-day', '25');
    // It fails after 4 s, so its seconds are still held while the next two submits are checked.
    const failing = await submitted(c, { prompt: 'quota fails sim:fail sim:render=4000', duration: 15 });
    await submitted(c, { prompt: 'quota renders sim:render=stall', duration: 10 });
    const over = await c.submit({ prompt: 'quota over', duration: 10 });
    expect(over.status).toBe(429);
    const seconds = Number(over.headers.get('retry-after'));
    const midnight = Math.ceil(Date.now() / 86400_000) * 86400;
    expect(Math.abs(Date.now() / 1000 + seconds - midnight)).toBeLessThanOrEqual(2);
    expect(((await over.json()) as any).error).toMatchObject({
      code: 'quota_exceeded',
      type: 'insufficient_quota',
      message: 'this key may make 25 seconds of video a day (UTC), seconds still rendering included; this 10-second task does not fit',
    });
    await ended(c, failing, 'failed');
    await settled(failing);
    await submitted(c, { prompt: 'quota fits again', duration: 15 });
    expect((await c.usage()).in_use).toMatchObject({ seconds_today: 25 });
  });

  it('seconds a month, and none lifting a limit again', async () => {
    const c = await client('monthly');
    await setLimits(c.id, '--seconds-per-month', '10');
    await submitted(c, { prompt: 'monthly one', duration: 10 });
    const over = await c.submit({ prompt: 'monthly two', duration: 10 });
    expect(over.status).toBe(429);
    expect(((await over.json()) as any).error.code).toBe('quota_exceeded');
    await setLimits(c.id, '--seconds-per-month', 'none');
    await submitted(c, { prompt: 'monthly three', duration: 10 });
  });
});

describe('usage, measured and settled once', () => {
  it('a succeeded task is charged the seconds its video measures, at its route\'s price', async () => {
    const c = await client('measured');
    const full = await submitted(c, { prompt: 'measured full', duration: 15 });
    const short = await submitted(c, { prompt: 'measured short sim:seconds=7', duration: 10 });
    const pro = await submitted(c, { model: 'sora-2-pro', prompt: 'measured pro', duration: 25 });
    const views = await Promise.all([ended(c, full, 'succeeded'), ended(c, short, 'succeeded'), ended(c, pro, 'succeeded')]);
    expect(views.map((v) => v.video.duration_seconds)).toEqual([15, 7, 25]);
    await Promise.all([full, short, pro].map(settled));
    const byModel = await c.usage('?group_by=model');
    // The answer is the contract's (and the OpenAPI document's) shape.
    expect(usageReportSchema().parse(byModel)).toEqual(byModel);
    expect(byModel.data).toEqual([
      { model: 'sora-2', tasks: 2, succeeded: 2, failed: 0, requested_seconds: 25, delivered_seconds: 22, cost: 2.2 },
      { model: 'sora-2-pro', tasks: 1, succeeded: 1, failed: 0, requested_seconds: 25, delivered_seconds: 25, cost: 7.5 },
    ]);
    expect(byModel.totals).toEqual({ tasks: 3, succeeded: 3, failed: 0, requested_seconds: 50, delivered_seconds: 47, cost: 9.7 });
    const byDay = await c.usage('?group_by=day');
    expect(byDay.data).toEqual([{ day: new Date().toISOString().slice(0, 10), ...byModel.totals }]);
    expect((await ops.item(short)).usage_cost).toBe(0.7);
  });

  it('a duplicated callback and a retried archive settle the task once', async () => {
    const c = await client('duplicates');
    const id = await submitted(c, { prompt: 'twice told sim:duplicate sim:video=truncated', duration: 10 });
    const sim = upstreamTask(h, (await eventually('upstream id', async () => (await ops.item(id)).upstream_id)) as string);
    await eventually('a failed archive attempt', async () => ((await ops.item(id)).archive_attempts >= 1 && (await ops.item(id)).upstream_message ? true : undefined));
    (sim.faults as SimFaults).video = 'ok';
    const done = await ended(c, id, 'succeeded');
    expect(done.video.duration_seconds).toBe(10);
    const item = await settled(id);
    expect(item.archive_attempts).toBeGreaterThanOrEqual(2);
    expect(sim.callbacks.filter((cb) => cb.state === 'succeeded').length).toBe(2);
    // The same ending told again, at once and after: the reconciler, a racing worker.
    const parts = { config: config(), store: taskStore(config()), usage: usageStore(config()) };
    const again = { ...taskRecordSchema().parse(item), usage_status: 'reserved' as const };
    await Promise.all([settleUsage(again, parts), settleUsage(again, parts), h.gw.reconcileNow()]);
    expect((await c.usage()).totals).toEqual({ tasks: 1, succeeded: 1, failed: 0, requested_seconds: 10, delivered_seconds: 10, cost: 1 });
    expect((await c.usage()).in_use).toMatchObject({ seconds_today: 10 });
  });

  it('failed, timed out and cancelled tasks cost nothing and give their seconds back', async () => {
    const c = await client('ends');
    await setLimits(c.id, '--seconds-per-day', '100', '--concurrent', '10');
    const failed = await submitted(c, { prompt: 'ends fail sim:fail', duration: 10 });
    const stalled = await submitted(c, { prompt: 'ends stall sim:render=stall', duration: 15 });
    const queued = await submitted(c, { prompt: 'ends queued sim:503', duration: 10 });
    const cancel = await h.api(`/v1/videos/generations/${queued}/cancel`, { method: 'POST', key: c.key });
    expect(cancel.status).toBe(200);
    expect(((await cancel.json()) as any).error.code).toBe('cancelled');
    expect((await ended(c, failed, 'failed')).error.code).toBe('upstream_failed');
    await new Promise((r) => setTimeout(r, DEADLINE_SECONDS * 1000));
    await h.gw.reconcileNow();
    expect((await ended(c, stalled, 'failed')).error.code).toBe('timeout');
    await Promise.all([failed, stalled, queued].map(settled));
    const usage = await c.usage();
    expect(usage.totals).toEqual({ tasks: 3, succeeded: 0, failed: 3, requested_seconds: 35, delivered_seconds: 0, cost: 0 });
    expect(usage.in_use).toEqual({ open_tasks: 0, seconds_today: 0, seconds_this_month: 0 });
  }, 30_000);

  it('the query is checked: bad ranges and groupings are 400 with the field named', async () => {
    const c = await client('queries');
    for (const [query, param, message] of [
      ['?group_by=week', 'group_by', 'group_by must be day or model'],
      ['?start=abc', 'start', 'start must be a Unix time in seconds'],
      ['?start=200&end=100', 'start', 'start must be before end'],
      ['?start=0&end=86400000', 'end', 'a usage range is at most 400 days'],
    ] as const) {
      const res = await h.api(`/v1/usage${query}`, { key: c.key });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error).toMatchObject({ code: 'invalid_request', param, message });
    }
    expect((await h.api('/v1/usage', { key: null })).status).toBe(401);
    const empty = await c.usage('?start=0&end=86400');
    expect(empty).toMatchObject({ object: 'list', start: 0, end: 86400, data: [], totals: { tasks: 0, cost: 0 } });
  });

  it('an admin key reads every key\'s usage, and one key\'s by id; other keys do not see /admin', async () => {
    const c = await client('watched');
    const id = await submitted(c, { prompt: 'watched one', duration: 10 });
    await ended(c, id, 'succeeded');
    await settled(id);
    const admin = await h.gw.createKey('operator', { admin: true });
    const all = (await (await h.api('/admin/usage', { key: admin })).json()) as any;
    expect(all.data).toEqual(expect.arrayContaining([{ key_id: c.id, name: 'watched', tasks: 1, succeeded: 1, failed: 0, requested_seconds: 10, delivered_seconds: 10, cost: 1 }]));
    const one = (await (await h.api(`/admin/usage?key_id=${c.id}&group_by=model`, { key: admin })).json()) as any;
    expect(one).toMatchObject({ key_id: c.id, name: 'watched', data: [{ model: 'sora-2', delivered_seconds: 10 }] });
    expect((await h.api('/admin/usage', { key: c.key })).status).toBe(404);
    expect((await h.api('/admin/usage?key_id=ffffffffffff', { key: admin })).status).toBe(404);
  });
});
