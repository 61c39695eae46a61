import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, GetCommand, type BatchGetCommandOutput, UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import type { LimitsInForce } from './contracts/limits';
import type { TaskRecord } from './contracts/task';
import { ApiError } from './http';
import { taskIdTime } from './ids';

/**
 * Seconds of video per API key: the limits checked at submit, and the usage kept as tasks end.
 *
 * Items, in the tasks' table, under their own partition keys (no index sees them: they have
 * no `owner`, `id` or `open`):
 *
 * - `USAGE#<owner>#<yyyy-mm-dd>` and `USAGE#<owner>#<yyyy-mm>`, the UTC day and month a task
 *   was submitted in: counts and seconds (in total and per model), `charged` (seconds reserved
 *   by open tasks plus seconds delivered, what the quotas compare), and one marker attribute
 *   per open task holding its reservation (`r:<task id>`).
 * - `USAGE#<owner>#active`: the set of the key's open task ids, while it has a concurrency limit.
 * - `USAGE#<owner>#rpm#<minute>`: submits in that minute, while it has a rate limit.
 *
 * Exactly once, without transactions: a reservation writes its marker under the condition
 * that it is absent, and settling or releasing removes it under the condition that it is
 * there, in the same update that moves the counters. A second settle (a duplicate callback,
 * a retried archive, a racing worker, the reconciler after a crash) finds no marker and
 * changes nothing; the active set is a set, so adding or removing a task twice is once.
 */

/** Costs are kept in millionths of a unit: sums of whole numbers do not drift. */
const MICROS = 1_000_000;
/** How long usage items are kept (the table's TTL removes them): a year and a month. */
const USAGE_RETENTION_SECONDS = 400 * 86400;
/** A reserved task whose record never appeared (its submit died in between) is given up after this. */
const ORPHAN_AFTER_MS = 10 * 60_000;
/** Open tasks looked at, at most, when a concurrency limit refuses a submit (to drop those already ended). */
const MAX_HEAL = 100;
/** A concurrency limit frees up when a task ends: no time is known, so clients are asked to wait this long. */
const CONCURRENCY_RETRY_AFTER_SECONDS = 5;

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7);
const usageKey = (owner: string, period: string) => ({ pk: `USAGE#${owner}#${period}` });
const activeKey = (owner: string) => ({ pk: `USAGE#${owner}#active` });
const rpmKey = (owner: string, minute: number) => ({ pk: `USAGE#${owner}#rpm#${minute}` });
const marker = (taskId: string) => `r:${taskId}`;

export const usageFields = ['tasks', 'succeeded', 'failed', 'requested_seconds', 'delivered_seconds', 'cost'] as const;
export type UsageFigures = Record<(typeof usageFields)[number], number>;
/** Attribute names of the counters, in total (`t:`) and per model (`m:<model>:`). */
const counter = (scope: string, field: string) => `${scope}:${field === 'cost' ? 'cost_micros' : field}`;
const scopesOf = (model: string) => ['t', `m:${model}`];

/** What a task's end adds up to: its delivered seconds and its cost. */
export interface Settlement {
  succeeded: boolean;
  deliveredSeconds: number;
  cost: number;
}

export interface UsageRow extends UsageFigures {
  day?: string;
  model?: string;
}

/** A limit's refusal: 429 with the limit's code and when to try again. Nothing was written. */
function refused(code: 'rate_limited' | 'concurrency_limit' | 'quota_exceeded', message: string, retryAfterSeconds: number) {
  return new ApiError(429, code, message, undefined, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
}

/** Seconds until the next UTC day or month starts. */
function untilNext(period: 'day' | 'month', now: number): number {
  const d = new Date(now);
  const next = period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return (next - now) / 1000;
}

/** A conditional update: true when it applied, false when its condition did not hold. */
async function conditional(db: DynamoDBDocumentClient, input: UpdateCommandInput): Promise<boolean> {
  try {
    await db.send(new UpdateCommand(input));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** `ADD` clauses for counters: names and values numbered from a prefix. */
function adds(counts: Record<string, number>, names: Record<string, string>, values: Record<string, unknown>): string[] {
  return Object.entries(counts).map(([attribute, amount], i) => {
    names[`#a${i}`] = attribute;
    values[`:a${i}`] = amount;
    return `#a${i} :a${i}`;
  });
}

/** The counters a task moves in its day and month items, in total and for its model. */
function countsFor(model: string, figures: Partial<UsageFigures>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const scope of scopesOf(model)) {
    for (const [field, amount] of Object.entries(figures)) {
      if (amount) counts[counter(scope, field)] = field === 'cost' ? Math.round(amount * MICROS) : amount;
    }
  }
  return counts;
}

export interface ReserveResult {
  /** The task was added to the key's set of open tasks (it has a concurrency limit). */
  active: boolean;
}

/** What settling or withdrawing a reservation reads of its task (`usage_active`: it joined the open set). */
type ReservedTask = Pick<TaskRecord, 'id' | 'owner' | 'model' | 'duration' | 'created_at' | 'usage_active'>;

type TaskLookup = (id: string) => Promise<Pick<TaskRecord, 'id' | 'state' | 'owner'> | undefined>;

export class UsageStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /**
   * Check the key's limits and reserve the task's seconds, or throw the 429 of the first limit
   * it is over, with everything it had taken given back. Reserving a task already reserved
   * (a retried submit of the same task id) succeeds without counting it twice. `lookup` reads
   * a task: when the concurrency limit is reached, tasks that ended without being released
   * (a worker died in between) are released first.
   */
  async reserve(task: Pick<TaskRecord, 'id' | 'owner' | 'model' | 'duration' | 'created_at'>, limits: LimitsInForce, lookup: TaskLookup): Promise<ReserveResult> {
    const now = task.created_at;
    /** Each check takes its share and returns how to give it back, or throws its refusal. */
    type Step = () => Promise<(() => Promise<unknown>) | undefined>;
    const steps: Step[] = [];
    if (limits.rpm !== undefined) {
      const rpm = limits.rpm;
      steps.push(async () => {
        const minute = Math.floor(now / 60_000);
        const key = rpmKey(task.owner, minute);
        const counted = await conditional(this.db, {
          TableName: this.table,
          Key: key,
          UpdateExpression: 'ADD #n :one SET expires_at = if_not_exists(expires_at, :expires)',
          ConditionExpression: 'attribute_not_exists(#n) OR #n < :limit',
          ExpressionAttributeNames: { '#n': 'submits' },
          ExpressionAttributeValues: { ':one': 1, ':limit': rpm, ':expires': Math.floor(now / 1000) + 3600 },
        });
        if (!counted) throw refused('rate_limited', `this key may submit ${rpm} tasks a minute; try again in the next minute`, ((minute + 1) * 60_000 - now) / 1000);
        return () => this.db.send(new UpdateCommand({ TableName: this.table, Key: key, UpdateExpression: 'ADD #n :minus', ExpressionAttributeNames: { '#n': 'submits' }, ExpressionAttributeValues: { ':minus': -1 } }));
      });
    }
    if (limits.concurrent !== undefined) {
      const limit = limits.concurrent;
      steps.push(async () => {
        const join = () =>
          conditional(this.db, {
            TableName: this.table,
            Key: activeKey(task.owner),
            UpdateExpression: 'ADD #tasks :task',
            ConditionExpression: 'attribute_not_exists(#tasks) OR size(#tasks) < :limit OR contains(#tasks, :id)',
            ExpressionAttributeNames: { '#tasks': 'tasks' },
            ExpressionAttributeValues: { ':task': new Set([task.id]), ':limit': limit, ':id': task.id },
          });
        if (!(await join()) && !((await this.dropEnded(task.owner, lookup, now)) && (await join())))
          throw refused('concurrency_limit', `this key may have ${limit} tasks open at once; try again when one has finished`, CONCURRENCY_RETRY_AFTER_SECONDS);
        return () => this.leave(task.owner, task.id);
      });
    }
    for (const [period, limit] of [['day', limits.seconds_per_day], ['month', limits.seconds_per_month]] as const) {
      steps.push(async () => {
        const key = usageKey(task.owner, period === 'day' ? dayOf(now) : monthOf(now));
        const outcome = await this.reserveIn(key, task, limit);
        if (outcome === 'over')
          throw refused(
            'quota_exceeded',
            `this key may make ${limit} seconds of video a ${period} (UTC), seconds still rendering included; this ${task.duration}-second task does not fit`,
            untilNext(period, now),
          );
        return outcome === 'reserved' ? () => this.unreserve(key, task) : undefined;
      });
    }
    // All at once: a submit waits for one round of writes, not four.
    const results = await Promise.allSettled(steps.map((step) => step()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value?.() : undefined)));
      throw failure.reason;
    }
    return { active: limits.concurrent !== undefined };
  }

  /** One period's reservation: `reserved`, `already` (this task holds one), or `over` its limit. */
  private async reserveIn(key: { pk: string }, task: Pick<TaskRecord, 'id' | 'model' | 'duration' | 'created_at'>, limit: number | undefined) {
    const names: Record<string, string> = { '#marker': marker(task.id) };
    const values: Record<string, unknown> = { ':seconds': task.duration, ':expires': Math.floor(task.created_at / 1000) + USAGE_RETENTION_SECONDS };
    const clauses = adds({ ...countsFor(task.model, { tasks: 1, requested_seconds: task.duration }), charged: task.duration }, names, values);
    let condition = 'attribute_not_exists(#marker)';
    if (limit !== undefined) {
      names['#charged'] = 'charged';
      values[':room'] = limit - task.duration;
      condition += ' AND (attribute_not_exists(#charged) OR #charged <= :room)';
    }
    // A task larger than the whole limit never fits; the item is only read, to tell a retry from a refusal.
    const reserved =
      (limit === undefined || limit >= task.duration) &&
      (await conditional(this.db, {
        TableName: this.table,
        Key: key,
        UpdateExpression: `SET #marker = :seconds, expires_at = if_not_exists(expires_at, :expires) ADD ${clauses.join(', ')}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }));
    if (reserved) return 'reserved' as const;
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return Item?.[marker(task.id)] !== undefined ? ('already' as const) : ('over' as const);
  }

  /** Take back a reservation made by a submit that is refused after all: as if it never was. */
  private unreserve(key: { pk: string }, task: Pick<TaskRecord, 'id' | 'model' | 'duration'>) {
    return this.closeReservation(key, task.id, { ...countsFor(task.model, { tasks: -1, requested_seconds: -task.duration }), charged: -task.duration });
  }

  /** Remove a task's reservation marker and move the counters, once: only while the marker is there. */
  private closeReservation(key: { pk: string }, taskId: string, increments: Record<string, number>) {
    const names: Record<string, string> = { '#marker': marker(taskId) };
    const values: Record<string, unknown> = {};
    const clauses = adds(increments, names, values);
    return conditional(this.db, {
      TableName: this.table,
      Key: key,
      UpdateExpression: `REMOVE #marker ADD ${clauses.join(', ')}`,
      ConditionExpression: 'attribute_exists(#marker)',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  /** Give back a reservation whose task was never written (its write failed): as if never made. */
  async withdraw(task: ReservedTask): Promise<void> {
    await Promise.all([
      this.unreserve(usageKey(task.owner, dayOf(task.created_at)), task),
      this.unreserve(usageKey(task.owner, monthOf(task.created_at)), task),
      this.leaveIfJoined(task),
    ]);
  }

  /**
   * Only a task that joined its key's set of open tasks leaves it: for a key without a
   * concurrency limit the write would change nothing (and make an empty item).
   */
  private async leaveIfJoined(task: ReservedTask) {
    if (task.usage_active) await this.leave(task.owner, task.id);
  }

  private leave(owner: string, taskId: string) {
    return this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: activeKey(owner),
        UpdateExpression: 'DELETE #tasks :task',
        ExpressionAttributeNames: { '#tasks': 'tasks' },
        ExpressionAttributeValues: { ':task': new Set([taskId]) },
      }),
    );
  }

  /**
   * Settle a task that ended: its reservation becomes the seconds it delivered and their cost
   * (succeeded), or nothing (failed, timed out, cancelled). Returns whether this call was the
   * one that settled it in its day; any number of calls, at once or one after another, settle
   * it once.
   */
  async settle(task: ReservedTask, s: Settlement): Promise<boolean> {
    const settleIn = (key: { pk: string }) => {
      const figures: Partial<UsageFigures> = s.succeeded ? { succeeded: 1, delivered_seconds: s.deliveredSeconds, cost: s.cost } : { failed: 1 };
      const charged = (s.succeeded ? s.deliveredSeconds : 0) - task.duration;
      return this.closeReservation(key, task.id, { ...countsFor(task.model, figures), ...(charged ? { charged } : {}) });
    };
    const [day] = await Promise.all([
      settleIn(usageKey(task.owner, dayOf(task.created_at))),
      settleIn(usageKey(task.owner, monthOf(task.created_at))),
      this.leaveIfJoined(task),
    ]);
    return day;
  }

  /**
   * Release the open tasks of a key's concurrency set that ended (or whose submit died before
   * the task was written) without being released; true when any was.
   */
  private async dropEnded(owner: string, lookup: TaskLookup, now: number): Promise<boolean> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: activeKey(owner), ConsistentRead: true }));
    const ids = [...((Item?.tasks as Set<string> | undefined) ?? [])].slice(0, MAX_HEAL);
    const ended = await Promise.all(
      ids.map(async (id) => {
        const task = await lookup(id);
        if (task) return task.state === 'succeeded' || task.state === 'failed';
        return now - taskIdTime(id) > ORPHAN_AFTER_MS;
      }),
    );
    const gone = ids.filter((_, i) => ended[i]);
    await Promise.all(gone.map((id) => this.leave(owner, id)));
    return gone.length > 0;
  }

  /** The key's usage per UTC day from `start` to `end` (ms), days with no tasks left out. */
  async days(owner: string, start: number, end: number): Promise<{ day: string; item: Record<string, unknown> }[]> {
    const days: string[] = [];
    for (let t = Date.UTC(...ymd(start)); t < end; t += 86400_000) days.push(dayOf(t));
    const found = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < days.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = days.slice(i, i + 100).map((d) => usageKey(owner, d));
      while (keys?.length) {
        const out: BatchGetCommandOutput = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
        for (const item of out.Responses?.[this.table] ?? []) found.set(String(item.pk).slice(-10), item);
        keys = out.UnprocessedKeys?.[this.table]?.Keys;
      }
    }
    return days.filter((d) => found.has(d)).map((day) => ({ day, item: found.get(day)! }));
  }

  /** Seconds charged to the key today and this month: delivered, plus reserved by tasks still open. */
  async charged(owner: string, now: number): Promise<{ day: number; month: number; open: number }> {
    const get = (key: { pk: string }) => this.db.send(new GetCommand({ TableName: this.table, Key: key }));
    const [day, month, active] = await Promise.all([get(usageKey(owner, dayOf(now))), get(usageKey(owner, monthOf(now))), get(activeKey(owner))]);
    return {
      day: Number(day.Item?.charged ?? 0),
      month: Number(month.Item?.charged ?? 0),
      open: (active.Item?.tasks as Set<string> | undefined)?.size ?? 0,
    };
  }
}

const ymd = (ms: number): [number, number, number] => {
  const d = new Date(ms);
  return [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
};

/** The figures of one scope (`t` for the total, `m:<model>`) of a usage item. */
export function figuresOf(item: Record<string, unknown>, scope: string): UsageFigures {
  const read = (field: string) => Number(item[counter(scope, field)] ?? 0);
  return {
    tasks: read('tasks'),
    succeeded: read('succeeded'),
    failed: read('failed'),
    requested_seconds: read('requested_seconds'),
    delivered_seconds: read('delivered_seconds'),
    cost: read('cost') / MICROS,
  };
}

/** The models a usage item has figures for. */
export function modelsOf(item: Record<string, unknown>): string[] {
  const models = new Set<string>();
  for (const name of Object.keys(item)) {
    const m = /^m:(.*):tasks$/.exec(name);
    if (m) models.add(m[1]!);
  }
  return [...models].sort();
}

export function addFigures(a: UsageFigures, b: UsageFigures): UsageFigures {
  const out = { ...a };
  for (const f of usageFields) out[f] = a[f] + b[f];
  // Sums of costs in micro-units, shown as units: rounded back to the micro-unit.
  out.cost = Math.round(out.cost * MICROS) / MICROS;
  return out;
}

export const zeroFigures = (): UsageFigures => ({ tasks: 0, succeeded: 0, failed: 0, requested_seconds: 0, delivered_seconds: 0, cost: 0 });
