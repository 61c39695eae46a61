import { keyId, type ApiKeyRecord } from '../api-keys';
import { effectiveLimits, type Limits } from '../contracts/limits';
import { MAX_USAGE_DAYS, type UsageQuery } from '../contracts/query';
import type { UsageReport } from '../contracts/view';
import { ApiError } from '../http';
import { addFigures, figuresOf, modelsOf, zeroFigures, type UsageFigures, type UsageRow, type UsageStore } from '../usage';

export interface UsageNeeds {
  usage: UsageStore;
  /** The operator's `DEFAULT_LIMITS`. */
  defaultLimits: Limits;
  now(): number;
}

/** The range a query asks for, in ms: whole UTC days, the current month so far by default. */
function rangeOf(q: UsageQuery, now: number): { start: number; end: number } {
  const today = new Date(now);
  const start = q.start !== undefined ? q.start * 1000 : Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1);
  const end = q.end !== undefined ? q.end * 1000 : Math.max(now, start + 1);
  if (end <= start) throw ApiError.invalid('start must be before end', 'start');
  if (end - start > MAX_USAGE_DAYS * 86400_000) throw ApiError.invalid(`a usage range is at most ${MAX_USAGE_DAYS} days`, 'end');
  return { start, end };
}

/**
 * A key's usage from the aggregates kept as its tasks end (never its tasks): a row per UTC day
 * or per model, and the totals. Days are whole: a range starting mid-day includes that day.
 * The key's limits in force and what it has used of them come along.
 */
export async function usageReport(key: ApiKeyRecord, q: UsageQuery, d: UsageNeeds): Promise<UsageReport> {
  const now = d.now();
  const { start, end } = rangeOf(q, now);
  const days = await d.usage.days(key.key_hash, start, end);
  let data: UsageRow[];
  if (q.group_by === 'model') {
    const byModel = new Map<string, UsageFigures>();
    for (const { item } of days)
      for (const model of modelsOf(item)) byModel.set(model, addFigures(byModel.get(model) ?? zeroFigures(), figuresOf(item, `m:${model}`)));
    data = [...byModel].map(([model, figures]) => ({ model, ...figures }));
  } else {
    data = days.map(({ day, item }) => ({ day, ...figuresOf(item, 't') }));
  }
  const totals = days.reduce((sum, { item }) => addFigures(sum, figuresOf(item, 't')), zeroFigures());
  const charged = await d.usage.charged(key.key_hash, now);
  const limits = effectiveLimits(key.limits, d.defaultLimits);
  return {
    object: 'list',
    start: Math.floor(start / 1000),
    end: Math.floor(end / 1000),
    group_by: q.group_by,
    data,
    totals,
    limits: {
      concurrent: limits.concurrent ?? null,
      rpm: limits.rpm ?? null,
      seconds_per_day: limits.seconds_per_day ?? null,
      seconds_per_month: limits.seconds_per_month ?? null,
    },
    // Seconds count against the quotas from submit (as asked) and are settled at what was delivered.
    in_use: { open_tasks: charged.open, seconds_today: charged.day, seconds_this_month: charged.month },
  };
}

/** `/admin/usage`: one key's report (`key_id`), or each key's totals over the range. */
export async function adminUsageReport(keys: ApiKeyRecord[], q: UsageQuery, d: UsageNeeds) {
  if (q.key_id !== undefined) {
    const key = keys.find((k) => k.key_hash.startsWith(q.key_id!));
    if (!key) throw ApiError.notFound('key');
    return { key_id: keyId(key.key_hash), name: key.name, ...(await usageReport(key, q, d)) };
  }
  const { start, end } = rangeOf(q, d.now());
  const data = await Promise.all(
    keys.map(async (key) => {
      const days = await d.usage.days(key.key_hash, start, end);
      return { key_id: keyId(key.key_hash), name: key.name, ...days.reduce((sum, { item }) => addFigures(sum, figuresOf(item, 't')), zeroFigures()) };
    }),
  );
  const totals = data.reduce((sum, row) => addFigures(sum, row), zeroFigures());
  return { object: 'list' as const, start: Math.floor(start / 1000), end: Math.floor(end / 1000), data, totals };
}
