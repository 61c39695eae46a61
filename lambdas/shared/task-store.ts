import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DeleteCommand, GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { conditionalPut } from './aws/conditional-put';
import { taskRecordSchema, type Attempt, type Renditions, type TaskRecord, type TaskState } from './contracts/task';
import { isTaskId } from './ids';
import { DEFAULT_DUE_SHARDS, dueKey, dueKeys, tableSchema } from './table-schema';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface VideoFacts {
  key: string;
  bytes: number;
  sha256: string;
  contentType: string;
  /** Read from the MP4's boxes as it was stored (`mp4-probe.ts`). */
  durationSeconds?: number;
  width?: number;
  height?: number;
  codec?: string;
  /** Shorter than the task asked for by more than `SHORT_VIDEO_TOLERANCE_SECONDS`. */
  short?: boolean;
}

/** The measurements a video has (a stored video found again may have none), as task fields. */
function measured(video: VideoFacts): Partial<TaskRecord> {
  if (video.durationSeconds === undefined) return {};
  return {
    video_duration_seconds: video.durationSeconds,
    video_width: video.width,
    video_height: video.height,
    video_codec: video.codec,
    ...(video.short ? { video_short: true } : {}),
  };
}

/** Encoders round a clip's length to whole frames and audio packets; past this, the video is short. */
export const SHORT_VIDEO_TOLERANCE_SECONDS = 0.5;
export const isShortVideo = (requestedSeconds: number, measuredSeconds: number | undefined) =>
  measuredSeconds !== undefined && measuredSeconds < requestedSeconds - SHORT_VIDEO_TOLERANCE_SECONDS;

/** A video's facts as task attributes: one mapping for recording them, finishing with them and reading them back. */
const videoAttributes = (video: VideoFacts) => ({
  video_key: video.key,
  video_bytes: video.bytes,
  video_sha256: video.sha256,
  video_content_type: video.contentType,
  ...measured(video),
});
const noVideo: VideoFacts = { key: '', bytes: 0, sha256: '', contentType: '' };

/** The video an archive attempt recorded (`recordVideo`) or stored, if any. */
export function recordedVideo(task: TaskRecord): VideoFacts | undefined {
  if (task.video_key === undefined || task.video_bytes === undefined || task.video_sha256 === undefined) return undefined;
  return {
    key: task.video_key,
    bytes: task.video_bytes,
    sha256: task.video_sha256,
    contentType: task.video_content_type ?? 'video/mp4',
    durationSeconds: task.video_duration_seconds,
    width: task.video_width,
    height: task.video_height,
    codec: task.video_codec,
  };
}

export interface NotifyAttempt {
  attempt: number;
  outcome: string;
}

/** Keep the last attempts only: a client that is down for a day must not grow the item without end. */
const NOTIFY_LOG_KEEP = 30;
/** After a task ends, how long the notify queue has before the reconciler re-sends the notification. */
export const NOTIFY_GRACE_MS = 5 * 60_000;
/** How long an archive job may hold a task before another worker may take it over. */
export const ARCHIVE_LEASE_MS = 16 * 60_000;
/** After a task ends, how long its usage has to be settled before the reconciler settles it. */
export const USAGE_GRACE_MS = 60_000;
/** How long a submit may hold a task before each upstream call: that call's timeout, and room for the writes around it. */
export const submitLeaseMs = (upstreamTimeoutMs: number) => upstreamTimeoutMs + 30_000;

/** Where a routing step left the task: the route and upstream it is with, and the attempts it made. */
export interface Routing {
  upstream?: string;
  route?: number;
  /** The route's own model id at its upstream. */
  upstreamModel?: string;
  attempts: readonly Attempt[];
}

function routingChange(r: Routing | undefined): Pick<Change, 'set' | 'append'> {
  if (!r) return {};
  const set: Record<string, unknown> = {};
  if (r.upstream !== undefined) set.upstream = r.upstream;
  if (r.route !== undefined) set.route = r.route;
  if (r.upstreamModel !== undefined) set.upstream_model = r.upstreamModel;
  return { set, append: r.attempts.length ? { attribute: 'attempts', items: [...r.attempts] } : undefined };
}

/**
 * Every item in the due index (open tasks, due or not) under every shard key and the
 * unsharded value, page by page: for the operator tools that must see them all.
 */
export async function* openTaskItems(db: DynamoDBDocumentClient, table: string): AsyncGenerator<Record<string, unknown>> {
  const { byDue } = tableSchema;
  for (const key of dueKeys) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await db.send(
        new QueryCommand({
          TableName: table,
          IndexName: byDue.indexName,
          KeyConditionExpression: '#open = :open',
          ExpressionAttributeNames: { '#open': byDue.partitionKey },
          ExpressionAttributeValues: { ':open': key },
          ExclusiveStartKey: start,
        }),
      );
      yield* page.Items ?? [];
      start = page.LastEvaluatedKey;
    } while (start);
  }
}

/** What finishing a task needs to know of it: `callback_url` and `usage_status` are set at submit. */
type Finishing = Pick<TaskRecord, 'id' | 'callback_url' | 'usage_status'>;

const taskKey = (id: string) => ({ pk: `TASK#${id}` });

interface Change {
  /** States the task must be in for the change to apply. */
  from: readonly TaskState[];
  set?: Record<string, unknown>;
  remove?: readonly string[];
  /** Extra condition, in terms of the `#name`/`:value` placeholders given below. */
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
  /** Attributes set only when the task has none yet. */
  setIfMissing?: Record<string, unknown>;
  append?: { attribute: string; items: unknown[] };
}

/**
 * The task table: the one place a task's state changes. Every change is a single
 * conditional update that only moves a task forward, so a duplicate or late event, a
 * retried job or two racing workers find the condition false and change nothing.
 */
export class TaskStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly clock: Clock = systemClock,
    /** How many due-index shards new writes spread over (`DUE_SHARDS`); reads cover them all. */
    private readonly dueShards: number = DEFAULT_DUE_SHARDS,
  ) {}

  now(): number {
    return this.clock.now();
  }

  /** Write a new task; false when a task with that id already exists. A task with work due is in its due-index shard. */
  create(task: TaskRecord): Promise<boolean> {
    const { open: _open, ...rest } = task;
    return conditionalPut(this.db, {
      TableName: this.table,
      Item: { ...taskKey(task.id), ...rest, ...(task.due_at !== undefined ? { open: dueKey(task.id, this.dueShards) } : {}) },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    if (!isTaskId(id)) return undefined; // not one of ours; also keeps odd input away from the key
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: taskKey(id), ConsistentRead: true }));
    return Item ? taskRecordSchema().parse(Item) : undefined;
  }

  /** Forget a finished task (the client's delete): its usage records are kept apart and stay. */
  async remove(id: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: taskKey(id) }));
  }

  /** A task as its owner sees it: another key's task does not exist. */
  async getOwned(id: string, owner: string): Promise<TaskRecord | undefined> {
    const task = await this.get(id);
    return task?.owner === owner ? task : undefined;
  }

  /**
   * The owner's tasks, newest first (or oldest first, `asc`), starting after the task id `after`:
   * the page's ids from the owner index (which holds only keys), then the tasks themselves.
   */
  async listByOwner(owner: string, limit: number, after?: string, order: 'asc' | 'desc' = 'desc'): Promise<{ tasks: TaskRecord[]; hasMore: boolean }> {
    const { byOwner } = tableSchema;
    const { Items = [] } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: byOwner.indexName,
        KeyConditionExpression: after ? `#o = :o AND #id ${order === 'asc' ? '>' : '<'} :after` : '#o = :o',
        ExpressionAttributeNames: after ? { '#o': byOwner.partitionKey, '#id': byOwner.sortKey } : { '#o': byOwner.partitionKey },
        ExpressionAttributeValues: after ? { ':o': owner, ':after': after } : { ':o': owner },
        ScanIndexForward: order === 'asc',
        Limit: limit + 1,
      }),
    );
    const ids = Items.slice(0, limit).map((i) => String(i[byOwner.sortKey]));
    const found = new Map((await this.getMany(ids)).map((t) => [t.id, t]));
    // A task deleted between the two reads is left out of its page.
    const tasks = ids.flatMap((id) => found.get(id) ?? []);
    return { tasks, hasMore: Items.length > limit };
  }

  /** Tasks by id, in any order; ids with no task are left out. At most 100 per request, as DynamoDB takes them. */
  async getMany(ids: readonly string[]): Promise<TaskRecord[]> {
    const tasks: TaskRecord[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, unknown>[] = ids.slice(i, i + 100).map(taskKey);
      // DynamoDB may leave keys unprocessed under load: ask again for those, backing off a little.
      for (let round = 0; keys.length; round++) {
        if (round === 8) throw new Error(`DynamoDB left ${keys.length} task reads unprocessed after ${round} tries`);
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** round));
        const answer = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of answer.Responses?.[this.table] ?? []) tasks.push(taskRecordSchema().parse(item));
        keys = answer.UnprocessedKeys?.[this.table]?.Keys ?? [];
      }
    }
    return tasks;
  }

  /**
   * Tasks the gateway owes work to whose time has come, oldest due first: under one
   * due-index key (a shard, as the reconciler reads them in parallel), or under all.
   */
  async dueTasks(limit: number, key?: string): Promise<TaskRecord[]> {
    return this.byDueKeys(key === undefined ? dueKeys : [key], limit, this.now());
  }

  /** Tasks the gateway still owes work to, due or not, soonest due first (for operators). */
  async openTasks(limit: number): Promise<TaskRecord[]> {
    return this.byDueKeys(dueKeys, limit);
  }

  /** The first `limit` tasks by due time under the given index keys (queried in parallel), due by `dueBy` if given. */
  private async byDueKeys(keys: readonly string[], limit: number, dueBy?: number): Promise<TaskRecord[]> {
    const { byDue } = tableSchema;
    const pages = await Promise.all(
      keys.map(async (key) => {
        const { Items = [] } = await this.db.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: byDue.indexName,
            KeyConditionExpression: dueBy === undefined ? '#open = :open' : '#open = :open AND #due <= :now',
            ExpressionAttributeNames: dueBy === undefined ? { '#open': byDue.partitionKey } : { '#open': byDue.partitionKey, '#due': byDue.sortKey },
            ExpressionAttributeValues: dueBy === undefined ? { ':open': key } : { ':open': key, ':now': dueBy },
            Limit: limit,
          }),
        );
        return Items;
      }),
    );
    return pages
      .flat()
      .sort((a, b) => Number(a[byDue.sortKey]) - Number(b[byDue.sortKey]))
      .slice(0, limit)
      .map((i) => taskRecordSchema().parse(i));
  }

  /**
   * Take a queued task for `leaseMs`, to hand it to an upstream: of any number of workers
   * trying at once, one gets the task back, the others undefined. Without `held`, the task
   * must be due and nobody's; with `held` (the `submit_lease_until` the caller's claim set),
   * the caller renews its own claim, before its next route. The lease must outlast the
   * upstream call, so that nobody submits a task whose submit may still be answered; should
   * the worker die, the task is due again when the lease ends. Creating a task with
   * `submit_lease_until` set is its first claim.
   */
  claimSubmit(id: string, leaseMs: number, held?: number) {
    const now = this.now();
    return this.change(id, {
      from: ['queued'],
      set: { submit_lease_until: now + leaseMs, due_at: now + leaseMs },
      ...(held === undefined
        ? {
            condition: '(attribute_not_exists(#slease) OR #slease < :now) AND #due <= :now',
            names: { '#slease': 'submit_lease_until', '#due': 'due_at' },
            values: { ':now': now },
          }
        : { condition: '#slease = :held', names: { '#slease': 'submit_lease_until' }, values: { ':held': held } }),
    });
  }

  /** The upstream accepted the task (or, after an ambiguous answer, was found to hold its job); the submit claim ends. */
  markSubmitted(id: string, upstreamId: string, nextCheckAt: number, routing?: Routing) {
    const now = this.now();
    const r = routingChange(routing);
    return this.change(id, {
      from: ['queued'],
      set: { state: 'submitted', upstream_id: upstreamId, heard_at: now, due_at: nextCheckAt, ...r.set },
      remove: ['upstream_message', 'submit_lease_until'],
      append: r.append,
    });
  }

  /** No upstream took the task now (or one may have, and is waited for): try again at `nextAt`; the submit claim ends. */
  deferSubmit(id: string, attempts: number, nextAt: number, reason: string, routing?: Routing) {
    const r = routingChange(routing);
    return this.change(id, {
      from: ['queued'],
      set: { submit_attempts: attempts, due_at: nextAt, upstream_message: reason, ...r.set },
      remove: ['submit_lease_until'],
      append: r.append,
    });
  }

  /** An upstream refused the task's content: it fails for good, its attempts recorded. */
  markRejected(task: Finishing, message: string, routing: Routing) {
    const r = routingChange(routing);
    return this.finish(task, ['queued'], { state: 'failed', error_code: 'upstream_rejected', error_message: message, ...r.set }, r.append);
  }

  /**
   * The `attempt`-th poll of a task still at its upstream; undefined for a message of a poll
   * already made (SQS delivers at least once) or a task that has moved on.
   */
  claimPoll(id: string, attempt: number) {
    return this.change(id, {
      from: ['submitted', 'in_progress'],
      set: { poll_count: attempt },
      condition: '(attribute_not_exists(#polls) OR #polls < :attempt)',
      names: { '#polls': 'poll_count' },
      values: { ':attempt': attempt },
    });
  }

  /** A progress word from the upstream. Progress never goes down. */
  recordProgress(id: string, progress: number, upstreamId: string | undefined, nextCheckAt: number) {
    const now = this.now();
    return this.change(id, {
      from: ['queued', 'submitted', 'in_progress'],
      set: { state: 'in_progress', progress, heard_at: now, due_at: nextCheckAt },
      setIfMissing: upstreamId ? { upstream_id: upstreamId } : undefined,
      condition: '(attribute_not_exists(#progress) OR #progress <= :progress)',
      names: { '#progress': 'progress' },
      values: { ':progress': progress },
    });
  }

  /**
   * The upstream finished: the video at `videoUrl` is to be archived, with the `renditions`
   * it offers; `cost` is what the upstream says the job cost, where it says.
   */
  startArchiving(id: string, videoUrl: string, upstreamId: string | undefined, retryAt: number, cost?: number, renditions: Renditions = {}) {
    return this.change(id, {
      from: ['queued', 'submitted', 'in_progress'],
      set: {
        state: 'archiving',
        upstream_video_url: videoUrl,
        ...(Object.keys(renditions).length ? { upstream_renditions: renditions } : {}),
        heard_at: this.now(),
        due_at: retryAt,
        archive_attempts: 0,
        ...(cost === undefined ? {} : { upstream_cost: cost }),
      },
      setIfMissing: upstreamId ? { upstream_id: upstreamId } : undefined,
    });
  }

  /** One archive worker takes the task for `ARCHIVE_LEASE_MS`; others find it taken. */
  claimArchive(id: string, attempt: number) {
    const now = this.now();
    return this.change(id, {
      from: ['archiving'],
      set: { archive_attempts: attempt, archive_lease_until: now + ARCHIVE_LEASE_MS, due_at: now + ARCHIVE_LEASE_MS },
      condition: '(attribute_not_exists(#lease) OR #lease < :now)',
      names: { '#lease': 'archive_lease_until' },
      values: { ':now': now },
    });
  }

  /** An archive attempt failed and will be retried at `retryAt`. */
  releaseArchive(id: string, retryAt: number, reason: string) {
    return this.change(id, {
      from: ['archiving'],
      set: { due_at: retryAt, upstream_message: reason },
      remove: ['archive_lease_until'],
    });
  }

  /**
   * The video passed every check and is about to appear in the bucket: its facts are recorded
   * first (the task still `archiving`), so that an attempt that dies after storing it leaves
   * the next attempt what it needs to finish from the stored object. Only the worker holding
   * the lease that ends at `leaseUntil` may record.
   */
  recordVideo(id: string, video: VideoFacts, leaseUntil: number) {
    return this.change(id, {
      from: ['archiving'],
      set: videoAttributes(video),
      condition: '#lease = :lease',
      names: { '#lease': 'archive_lease_until' },
      values: { ':lease': leaseUntil },
    });
  }

  /** The video is in the bucket. */
  markSucceeded(task: Finishing, video: VideoFacts, renditions: Renditions = {}) {
    const stored = Object.keys(renditions).length ? { renditions } : {};
    return this.finish(task, ['archiving'], { state: 'succeeded', progress: 100, ...videoAttributes(video), ...stored });
  }

  /**
   * The task failed for good; nothing after this moves it again. `from` narrows the states
   * it may fail from (an upstream's word cannot fail a task whose video is being archived).
   */
  markFailed(
    task: Finishing,
    code: string,
    message: string,
    from: readonly TaskState[] = ['queued', 'submitted', 'in_progress', 'archiving'],
  ) {
    // A video recorded by an attempt that never stored it is not the task's.
    return this.finish(task, from, { state: 'failed', error_code: code, error_message: message }, undefined, Object.keys(videoAttributes(noVideo)));
  }

  /**
   * Record one webhook attempt. `delivered` or `abandoned` closes the notification (once:
   * a second worker's success finds it closed); otherwise `nextAt` is when to look again.
   */
  recordNotifyAttempt(
    id: string,
    attempt: NotifyAttempt,
    result: { delivered: true } | { abandoned: true } | { nextAt: number },
  ) {
    const now = this.now();
    const closed = 'delivered' in result ? 'delivered' : 'abandoned' in result ? 'abandoned' : undefined;
    return this.change(id, {
      from: ['succeeded', 'failed'],
      set: {
        notify_attempts: attempt.attempt,
        ...(closed ? { notify_status: closed } : { due_at: (result as { nextAt: number }).nextAt }),
      },
      remove: closed ? ['open', 'due_at'] : [],
      setIfMissing: { notify_first_at: now },
      append: { attribute: 'notify_log', items: [{ at: now, ...attempt }] },
      condition: '#notify = :pending',
      names: { '#notify': 'notify_status' },
      values: { ':pending': 'pending' },
    }).then(async (task) => {
      // Trim the log in a second, unconditional-on-state step; it only ever shortens it.
      if (task && (task.notify_log?.length ?? 0) > NOTIFY_LOG_KEEP) await this.trimNotifyLog(task);
      return task;
    });
  }

  /**
   * The ended task's usage is settled (`UsageStore.settle`, which counts it once whoever calls):
   * recorded on the task, which leaves the reconciler's index unless its webhook is still owed.
   */
  markUsageSettled(task: Pick<TaskRecord, 'id' | 'notify_status'>, cost: number) {
    const owesNotify = task.notify_status === 'pending';
    return this.change(task.id, {
      from: ['succeeded', 'failed'],
      set: { usage_status: 'settled', usage_cost: cost },
      remove: owesNotify ? [] : ['open', 'due_at'],
      condition: '#usage = :reserved',
      names: { '#usage': 'usage_status' },
      values: { ':reserved': 'reserved' },
    });
  }

  /** Move a task's next reconcile time, provided it is still in `state`. */
  reschedule(id: string, state: TaskState, dueAt: number) {
    return this.change(id, { from: [state], set: { due_at: dueAt } });
  }

  private async trimNotifyLog(task: TaskRecord) {
    const keep = (task.notify_log ?? []).slice(-NOTIFY_LOG_KEEP);
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: taskKey(task.id),
        UpdateExpression: 'SET notify_log = :keep',
        ExpressionAttributeValues: { ':keep': keep },
      }),
    );
  }

  private finish(task: Finishing, from: readonly TaskState[], set: Record<string, unknown>, append?: Change['append'], remove: readonly string[] = []) {
    const now = this.now();
    // A task with a webhook stays open until the notification is delivered or given up, one
    // with reserved seconds until they are settled: should the worker die first, the reconciler finishes the job.
    const notify = task.callback_url !== undefined;
    const settle = task.usage_status === 'reserved';
    return this.change(task.id, {
      from,
      set: {
        ...set,
        completed_at: now,
        ...(notify ? { notify_status: 'pending', due_at: now + NOTIFY_GRACE_MS } : settle ? { due_at: now + USAGE_GRACE_MS } : {}),
      },
      remove: [...remove, 'archive_lease_until', 'submit_lease_until', ...(notify || settle ? [] : ['open', 'due_at'])],
      append,
    });
  }

  /** One conditional update; the updated task, or undefined when the condition did not hold. */
  private async change(id: string, c: Change): Promise<TaskRecord | undefined> {
    const names: Record<string, string> = { '#state': 'state', ...c.names };
    const values: Record<string, unknown> = { ...c.values };
    const sets: string[] = [];
    const now = this.now();
    // A task given a due time is in the due index, under its shard: an unsharded task moves there now.
    const indexed = c.set && 'due_at' in c.set && !c.remove?.includes(tableSchema.byDue.partitionKey);
    const set = { ...c.set, updated_at: now, ...(indexed ? { [tableSchema.byDue.partitionKey]: dueKey(id, this.dueShards) } : {}) };
    Object.entries(set).forEach(([k, v], i) => {
      names[`#s${i}`] = k;
      values[`:s${i}`] = v;
      sets.push(`#s${i} = :s${i}`);
    });
    Object.entries(c.setIfMissing ?? {}).forEach(([k, v], i) => {
      names[`#m${i}`] = k;
      values[`:m${i}`] = v;
      sets.push(`#m${i} = if_not_exists(#m${i}, :m${i})`);
    });
    if (c.append) {
      names['#append'] = c.append.attribute;
      values[':append'] = c.append.items;
      values[':empty'] = [];
      sets.push('#append = list_append(if_not_exists(#append, :empty), :append)');
    }
    const removes = (c.remove ?? []).map((k, i) => {
      names[`#r${i}`] = k;
      return `#r${i}`;
    });
    const fromList = c.from.map((s, i) => {
      values[`:from${i}`] = s;
      return `:from${i}`;
    });
    const condition = [`attribute_exists(pk)`, `#state IN (${fromList.join(', ')})`, c.condition].filter(Boolean).join(' AND ');
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: taskKey(id),
          UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return taskRecordSchema().parse(Attributes);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }
}
