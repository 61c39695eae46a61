import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { effectiveLimits } from '../../lambdas/shared/contracts/limits';
import type { TaskRecord } from '../../lambdas/shared/contracts/task';
import { ApiError } from '../../lambdas/shared/http';
import { newTaskId } from '../../lambdas/shared/ids';
import { figuresOf, UsageStore } from '../../lambdas/shared/usage';
import { embeddedDynamo } from './dynalite';

const dynamo = embeddedDynamo();

let table: string;
let usage: UsageStore;
const owner = 'a'.repeat(64);
const noon = Date.UTC(2026, 11, 2, 12);
type Ended = Pick<TaskRecord, 'id' | 'state' | 'owner'>;
let ended: Map<string, Ended>;
const lookup = async (id: string) => ended.get(id);

beforeEach(async () => {
  table = await dynamo.newTable('usage');
  usage = new UsageStore(dynamo.db, table);
  ended = new Map();
});

const task = (duration: number, at = noon, model = 'sora-2'): Pick<TaskRecord, 'id' | 'owner' | 'model' | 'duration' | 'created_at' | 'usage_active'> => ({ id: newTaskId(at), owner, model, duration, created_at: at });
/** Reserve as submit does: a task that joined its key's open set is marked so on its record. */
const reserveTask = async (t: ReturnType<typeof task>, limits: Parameters<UsageStore['reserve']>[1]) => {
  if ((await usage.reserve(t, limits, lookup)).active) t.usage_active = true;
};
const item = async (period: string) => (await dynamo.db.send(new GetCommand({ TableName: table, Key: { pk: `USAGE#${owner}#${period}` } }))).Item ?? {};

async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string; retryAfter: number }> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  const e = error as ApiError;
  return { status: e.status, code: e.code, retryAfter: Number(e.headers['retry-after']) };
}

describe('limits', () => {
  it('take a key\'s own value, null lifting the default, and the default otherwise', () => {
    expect(effectiveLimits({ rpm: 5, concurrent: null }, { rpm: 60, concurrent: 2, seconds_per_day: 600 })).toEqual({ rpm: 5, seconds_per_day: 600 });
    expect(effectiveLimits(undefined, {})).toEqual({});
  });

  it('a concurrency limit of 5 takes exactly 5 of 50 submits made at once', async () => {
    const tasks = Array.from({ length: 50 }, () => task(10));
    const results = await Promise.allSettled(tasks.map((t) => usage.reserve(t, { concurrent: 5 }, lookup)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as ApiError).code);
    expect(new Set(refused)).toEqual(new Set(['concurrency_limit']));
    // The refused ones took nothing back with them: five tasks, fifty seconds.
    expect(figuresOf(await item('2026-12-02'), 't')).toMatchObject({ tasks: 5, requested_seconds: 50 });
  });

  it('an ended task that was never released frees its place when the limit is reached', async () => {
    const first = task(10);
    await usage.reserve(first, { concurrent: 1 }, lookup);
    expect(await refusal(usage.reserve(task(10), { concurrent: 1 }, lookup))).toEqual({ status: 429, code: 'concurrency_limit', retryAfter: 5 });
    ended.set(first.id, { id: first.id, owner, state: 'failed' });
    await expect(usage.reserve(task(10), { concurrent: 1 }, lookup)).resolves.toEqual({ active: true });
  });

  it('submits a minute: over the limit is rate_limited until the next minute, and counts nothing', async () => {
    const at = noon + 45_000;
    await usage.reserve(task(10, at), { rpm: 2 }, lookup);
    await usage.reserve(task(10, at), { rpm: 2 }, lookup);
    expect(await refusal(usage.reserve(task(10, at), { rpm: 2 }, lookup))).toEqual({ status: 429, code: 'rate_limited', retryAfter: 15 });
    await expect(usage.reserve(task(10, noon + 60_000), { rpm: 2 }, lookup)).resolves.toBeDefined();
    expect(figuresOf(await item('2026-12-02'), 't').tasks).toBe(3);
  });

  it('seconds a day count what is still rendering; a refusal gives back what the other limits took', async () => {
    await usage.reserve(task(10), { seconds_per_day: 25, rpm: 10, concurrent: 10 }, lookup);
    await usage.reserve(task(15), { seconds_per_day: 25, rpm: 10, concurrent: 10 }, lookup);
    expect(await refusal(usage.reserve(task(10), { seconds_per_day: 25, rpm: 10, concurrent: 10 }, lookup))).toEqual({
      status: 429,
      code: 'quota_exceeded',
      retryAfter: 12 * 3600,
    });
    expect(await item('rpm#' + Math.floor(noon / 60_000))).toMatchObject({ submits: 2 });
    expect((await item('active')).tasks.size).toBe(2);
    expect(await usage.charged(owner, noon)).toEqual({ day: 25, month: 25, open: 2 });
  });

  it('a task larger than the whole monthly quota is refused until the next month', async () => {
    expect(await refusal(usage.reserve(task(30), { seconds_per_month: 20 }, lookup))).toEqual({ status: 429, code: 'quota_exceeded', retryAfter: 29.5 * 86400 });
    expect(figuresOf(await item('2026-12-02'), 't').tasks).toBe(0);
  });
});

describe('settling', () => {
  it('two settle attempts at once count the task once, at the seconds it delivered', async () => {
    const t = task(10);
    await usage.reserve(t, { seconds_per_day: 100 }, lookup);
    const outcome = { succeeded: true, deliveredSeconds: 9.4, cost: 0.752 };
    const [a, b] = await Promise.all([usage.settle(t, outcome), usage.settle(t, outcome)]);
    expect([a, b].sort()).toEqual([false, true]);
    expect(await usage.settle(t, outcome)).toBe(false);
    const day = await item('2026-12-02');
    expect(figuresOf(day, 't')).toEqual({ tasks: 1, succeeded: 1, failed: 0, requested_seconds: 10, delivered_seconds: 9.4, cost: 0.752 });
    expect(figuresOf(day, 'm:sora-2')).toEqual(figuresOf(day, 't'));
    expect(figuresOf(await item('2026-12'), 't')).toEqual(figuresOf(day, 't'));
    expect(await usage.charged(owner, noon)).toEqual({ day: 9.4, month: 9.4, open: 0 });
  });

  it('a failed task gives its seconds back and costs nothing, however often it is released', async () => {
    const t = task(15);
    await reserveTask(t, { seconds_per_day: 20, concurrent: 1 });
    const failed = { succeeded: false, deliveredSeconds: 0, cost: 0 };
    await Promise.all([usage.settle(t, failed), usage.settle(t, failed), usage.settle(t, failed)]);
    expect(figuresOf(await item('2026-12-02'), 't')).toEqual({ tasks: 1, succeeded: 0, failed: 1, requested_seconds: 15, delivered_seconds: 0, cost: 0 });
    expect(await usage.charged(owner, noon)).toEqual({ day: 0, month: 0, open: 0 });
    await expect(usage.reserve(task(20), { seconds_per_day: 20, concurrent: 1 }, lookup)).resolves.toBeDefined();
  });

  it('a task reserved twice (its submit retried) is counted and settled once', async () => {
    const t = task(10);
    await usage.reserve(t, { concurrent: 2, seconds_per_day: 15 }, lookup);
    await usage.reserve(t, { concurrent: 2, seconds_per_day: 15 }, lookup);
    expect(figuresOf(await item('2026-12-02'), 't')).toMatchObject({ tasks: 1, requested_seconds: 10 });
    expect(await usage.charged(owner, noon)).toEqual({ day: 10, month: 10, open: 1 });
  });

  it('a reservation whose task was never written is withdrawn without a trace, and cannot be settled after', async () => {
    const t = task(10);
    await reserveTask(t, { concurrent: 1, seconds_per_day: 10 });
    await usage.withdraw(t);
    expect(figuresOf(await item('2026-12-02'), 't')).toMatchObject({ tasks: 0, requested_seconds: 0 });
    expect(await usage.charged(owner, noon)).toEqual({ day: 0, month: 0, open: 0 });
    expect(await usage.settle(t, { succeeded: true, deliveredSeconds: 10, cost: 1 })).toBe(false);
    await expect(usage.reserve(task(10), { concurrent: 1, seconds_per_day: 10 }, lookup)).resolves.toEqual({ active: true });
  });

  it('a key without a concurrency limit has no set of open tasks: ending a task writes only its day and month', async () => {
    const t = task(10);
    await reserveTask(t, { seconds_per_day: 100 });
    expect(t.usage_active).toBeUndefined();
    await usage.settle(t, { succeeded: true, deliveredSeconds: 10, cost: 1 });
    expect(await item('active')).toEqual({});
    expect(figuresOf(await item('2026-12-02'), 't')).toMatchObject({ succeeded: 1, delivered_seconds: 10 });
  });

  it('days and models are kept apart', async () => {
    const a = task(10, noon, 'sora-2');
    const b = task(15, noon + 86400_000, 'sora-2-pro');
    for (const t of [a, b]) await usage.reserve(t, {}, lookup);
    await usage.settle(a, { succeeded: true, deliveredSeconds: 10, cost: 1 });
    await usage.settle(b, { succeeded: true, deliveredSeconds: 15, cost: 3 });
    const days = await usage.days(owner, Date.UTC(2026, 11, 1), Date.UTC(2027, 0, 1));
    expect(days.map((d) => [d.day, figuresOf(d.item, 't').delivered_seconds])).toEqual([['2026-12-02', 10], ['2026-12-03', 15]]);
    expect(figuresOf(days[1]!.item, 'm:sora-2-pro').cost).toBe(3);
    expect(figuresOf(days[1]!.item, 'm:sora-2').tasks).toBe(0);
  });
});
