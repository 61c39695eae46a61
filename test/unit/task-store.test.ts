import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../lambdas/shared/contracts';
import { MAX_DUE_SHARDS, dueKey } from '../../lambdas/shared/table-schema';
import { ARCHIVE_LEASE_MS, NOTIFY_GRACE_MS, TaskStore, isShortVideo, recordedVideo, type Clock, type VideoFacts } from '../../lambdas/shared/task-store';
import { taskRecord } from '../fixtures/task';
import { embeddedDynamo } from './dynalite';

const dynamo = embeddedDynamo();

/** A clock the test moves by hand. */
class FakeClock implements Clock {
  constructor(public t = Date.UTC(2025, 10, 24, 12, 0, 0)) {}
  now() {
    return this.t;
  }
  advance(ms: number) {
    this.t += ms;
  }
}

let clock: FakeClock;
let store: TaskStore;
let tableName: string;

/** Each test gets a table of its own, so what one test leaves open is not another's due task. */
beforeEach(async () => {
  tableName = await dynamo.newTable('tasks');
  clock = new FakeClock();
  store = new TaskStore(dynamo.db, tableName, clock);
});

const HOUR = 3600_000;

function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return taskRecord(clock.now(), { deadline_at: clock.now() + 2 * HOUR, ...overrides });
}

const video: VideoFacts = { key: 'videos/x.mp4', bytes: 1234, sha256: 'ab'.repeat(32), contentType: 'video/mp4' };

async function created(overrides: Partial<TaskRecord> = {}) {
  const t = task(overrides);
  expect(await store.create(t)).toBe(true);
  return t;
}

/** A task the upstream has finished rendering, waiting for its video to be copied. */
async function archiving(overrides: Partial<TaskRecord> = {}) {
  const t = await created(overrides);
  await store.markSubmitted(t.id, 'up-1', clock.now() + 300_000);
  expect(await store.startArchiving(t.id, 'https://cdn.example/v.mp4', 'up-1', clock.now() + ARCHIVE_LEASE_MS)).toBeDefined();
  return t;
}

describe('TaskStore.create', () => {
  it('writes a new task that reads back as it was, in the due-index shard of its id', async () => {
    const t = await created({ callback_url: 'https://hooks.example.com/v', characters: [{ url: 'https://c.example/a.mp4', timestamps: '0,3' }] });
    expect(await store.get(t.id)).toEqual({ ...t, open: dueKey(t.id, 8) });
  });

  it('refuses a second task with the same id, keeping the first', async () => {
    const t = await created();
    expect(await store.create({ ...t, prompt: 'something else' })).toBe(false);
    expect((await store.get(t.id))!.prompt).toBe(t.prompt);
  });

  it('knows nothing of a task it never wrote', async () => {
    expect(await store.get('task_nothinghere')).toBeUndefined();
  });
});

describe('TaskStore.getOwned', () => {
  it('shows a task to its owner only', async () => {
    const t = await created({ owner: 'owner-a' });
    expect((await store.getOwned(t.id, 'owner-a'))?.id).toBe(t.id);
    expect(await store.getOwned(t.id, 'owner-b')).toBeUndefined();
  });
});

describe('TaskStore.markSubmitted', () => {
  it('moves a queued task to submitted with the upstream id', async () => {
    const t = await created({ upstream_message: 'upstream answered 503' });
    clock.advance(1000);
    const moved = await store.markSubmitted(t.id, 'up-42', clock.now() + 300_000);
    expect(moved).toMatchObject({ state: 'submitted', upstream_id: 'up-42', heard_at: clock.now(), due_at: clock.now() + 300_000, updated_at: clock.now() });
    expect(moved).not.toHaveProperty('upstream_message');
  });

  it('applies only once', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-42', clock.now() + 1);
    expect(await store.markSubmitted(t.id, 'up-43', clock.now() + 1)).toBeUndefined();
    expect((await store.get(t.id))!.upstream_id).toBe('up-42');
  });

  it('does not pull a task back from further on', async () => {
    const t = await archiving();
    expect(await store.markSubmitted(t.id, 'up-2', clock.now())).toBeUndefined();
    expect((await store.get(t.id))!.state).toBe('archiving');
  });

  it('creates nothing for an unknown task', async () => {
    expect(await store.markSubmitted('task_ghost', 'up-1', clock.now())).toBeUndefined();
    expect(await store.get('task_ghost')).toBeUndefined();
  });
});

describe('TaskStore.deferSubmit', () => {
  it('keeps a queued task queued, due again later, with the reason', async () => {
    const t = await created();
    const deferred = await store.deferSubmit(t.id, 1, clock.now() + 30_000, 'upstream answered 503');
    expect(deferred).toMatchObject({ state: 'queued', submit_attempts: 1, due_at: clock.now() + 30_000, upstream_message: 'upstream answered 503' });
  });

  it('does not touch a task the upstream has since taken', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-1', clock.now() + 300_000);
    expect(await store.deferSubmit(t.id, 2, clock.now() + 30_000, 'late')).toBeUndefined();
  });
});

describe('TaskStore.claimSubmit', () => {
  /** A queued task the upstream did not take, due again now. */
  const deferred = async () => {
    const t = await created();
    await store.deferSubmit(t.id, 1, clock.now(), 'upstream answered 503');
    return t;
  };

  it('of ten workers claiming a due task at once, exactly one gets it, with the lease recorded', async () => {
    const t = await deferred();
    const claims = await Promise.all(Array.from({ length: 10 }, () => store.claimSubmit(t.id, 45_000)));
    const won = claims.filter((c) => c !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ state: 'queued', submit_lease_until: clock.now() + 45_000, due_at: clock.now() + 45_000 });
  });

  it('a held task cannot be claimed until its lease has run out, then it can', async () => {
    const t = await deferred();
    expect(await store.claimSubmit(t.id, 45_000)).toBeDefined();
    clock.advance(44_999);
    expect(await store.claimSubmit(t.id, 45_000)).toBeUndefined();
    clock.advance(2);
    expect(await store.claimSubmit(t.id, 45_000)).toMatchObject({ submit_lease_until: clock.now() + 45_000 });
  });

  it('a task just created holds its own claim (its submit is under way)', async () => {
    const now = clock.now();
    const t = await created({ submit_lease_until: now + 45_000, due_at: now + 45_000 });
    clock.advance(45_000);
    expect(await store.claimSubmit(t.id, 45_000)).toBeUndefined();
    clock.advance(1);
    expect(await store.claimSubmit(t.id, 45_000)).toBeDefined();
  });

  it('the holder renews its claim before its next route; a worker with another lease cannot', async () => {
    const t = await deferred();
    const first = (await store.claimSubmit(t.id, 45_000))!;
    clock.advance(10_000);
    expect(await store.claimSubmit(t.id, 45_000, first.submit_lease_until! - 1)).toBeUndefined();
    const renewed = await store.claimSubmit(t.id, 45_000, first.submit_lease_until);
    expect(renewed).toMatchObject({ submit_lease_until: clock.now() + 45_000, due_at: clock.now() + 45_000 });
    expect(await store.claimSubmit(t.id, 45_000)).toBeUndefined();
  });

  it('does not take a queued task before it is due (its backoff stands)', async () => {
    const t = await created();
    await store.deferSubmit(t.id, 1, clock.now() + 30_000, 'upstream answered 503');
    expect(await store.claimSubmit(t.id, 45_000)).toBeUndefined();
  });

  it('is released by markSubmitted and deferSubmit, and by failing the task', async () => {
    const a = await deferred();
    await store.claimSubmit(a.id, 45_000);
    expect(await store.deferSubmit(a.id, 2, clock.now(), 'upstream answered 503')).not.toHaveProperty('submit_lease_until');
    expect(await store.claimSubmit(a.id, 45_000)).toBeDefined();
    expect(await store.markSubmitted(a.id, 'up-1', clock.now() + 300_000)).not.toHaveProperty('submit_lease_until');

    const b = await deferred();
    await store.claimSubmit(b.id, 45_000);
    expect(await store.markFailed(b, 'upstream_rejected', 'no')).not.toHaveProperty('submit_lease_until');
  });

  it('cannot take a task that has left the queue', async () => {
    const t = await deferred();
    await store.markSubmitted(t.id, 'up-1', clock.now());
    expect(await store.claimSubmit(t.id, 45_000)).toBeUndefined();
  });
});

describe('TaskStore.recordProgress', () => {
  it('moves the task in progress and raises its progress', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-1', clock.now());
    expect(await store.recordProgress(t.id, 40, 'up-1', clock.now() + 300_000)).toMatchObject({ state: 'in_progress', progress: 40 });
    expect(await store.recordProgress(t.id, 40, 'up-1', clock.now() + 300_000)).toMatchObject({ progress: 40 });
    expect(await store.recordProgress(t.id, 75, 'up-1', clock.now() + 300_000)).toMatchObject({ progress: 75 });
  });

  it('never lowers progress: a late, smaller figure changes nothing', async () => {
    const t = await created();
    await store.recordProgress(t.id, 60, 'up-1', clock.now());
    expect(await store.recordProgress(t.id, 20, 'up-1', clock.now())).toBeUndefined();
    expect((await store.get(t.id))!.progress).toBe(60);
  });

  it('keeps the upstream id it already has', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-1', clock.now());
    expect((await store.recordProgress(t.id, 10, 'up-other', clock.now()))!.upstream_id).toBe('up-1');
  });

  it('learns the upstream id from a progress word when it had none', async () => {
    const t = await created();
    expect((await store.recordProgress(t.id, 10, 'up-7', clock.now()))!.upstream_id).toBe('up-7');
  });

  it('does not move a task that is archiving or finished', async () => {
    const t = await archiving();
    expect(await store.recordProgress(t.id, 99, 'up-1', clock.now())).toBeUndefined();
    expect((await store.get(t.id))!.state).toBe('archiving');
  });
});

describe('TaskStore.startArchiving', () => {
  it('moves a rendered task to archiving with the video URL', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-1', clock.now());
    expect(await store.startArchiving(t.id, 'https://cdn.example/v.mp4', 'up-1', clock.now() + ARCHIVE_LEASE_MS)).toMatchObject({
      state: 'archiving',
      upstream_video_url: 'https://cdn.example/v.mp4',
      archive_attempts: 0,
      due_at: clock.now() + ARCHIVE_LEASE_MS,
    });
  });

  it('applies once: a repeated success callback finds the task already archiving', async () => {
    const t = await archiving();
    expect(await store.startArchiving(t.id, 'https://cdn.example/other.mp4', 'up-1', clock.now())).toBeUndefined();
    expect((await store.get(t.id))!.upstream_video_url).toBe('https://cdn.example/v.mp4');
  });
});

describe('TaskStore.claimArchive', () => {
  it('lets one worker hold the task; a second finds it taken', async () => {
    const t = await archiving();
    const first = await store.claimArchive(t.id, 1);
    expect(first).toMatchObject({ archive_attempts: 1, archive_lease_until: clock.now() + ARCHIVE_LEASE_MS });
    expect(await store.claimArchive(t.id, 1)).toBeUndefined();
    clock.advance(ARCHIVE_LEASE_MS - 1);
    expect(await store.claimArchive(t.id, 2)).toBeUndefined();
  });

  it('lets another worker take over once the lease has run out', async () => {
    const t = await archiving();
    await store.claimArchive(t.id, 1);
    clock.advance(ARCHIVE_LEASE_MS + 1);
    expect(await store.claimArchive(t.id, 2)).toMatchObject({ archive_attempts: 2, archive_lease_until: clock.now() + ARCHIVE_LEASE_MS });
  });

  it('may be taken again at once after the worker released it', async () => {
    const t = await archiving();
    await store.claimArchive(t.id, 1);
    const released = await store.releaseArchive(t.id, clock.now() + 60_000, 'connection reset');
    expect(released).not.toHaveProperty('archive_lease_until');
    expect(released).toMatchObject({ upstream_message: 'connection reset', due_at: clock.now() + 60_000 });
    expect(await store.claimArchive(t.id, 2)).toBeDefined();
  });

  it('cannot take a task that is not archiving', async () => {
    const t = await created();
    expect(await store.claimArchive(t.id, 1)).toBeUndefined();
    const done = await archiving();
    await store.claimArchive(done.id, 1);
    await store.markSucceeded(done, video);
    clock.advance(ARCHIVE_LEASE_MS * 2);
    expect(await store.claimArchive(done.id, 2)).toBeUndefined();
  });
});

describe('TaskStore.recordVideo', () => {
  it('records the video on the task, still archiving, for the worker holding the lease', async () => {
    const t = await archiving();
    const held = (await store.claimArchive(t.id, 1))!;
    const recorded = await store.recordVideo(t.id, video, held.archive_lease_until!);
    expect(recorded).toMatchObject({ state: 'archiving', video_key: video.key, video_bytes: video.bytes, video_sha256: video.sha256 });
    expect(recordedVideo(recorded!)).toEqual(video);
  });

  it('is refused to a worker whose lease another has since taken over', async () => {
    const t = await archiving();
    const stale = (await store.claimArchive(t.id, 1))!;
    clock.advance(ARCHIVE_LEASE_MS + 1);
    await store.claimArchive(t.id, 2);
    expect(await store.recordVideo(t.id, video, stale.archive_lease_until!)).toBeUndefined();
    expect(recordedVideo((await store.get(t.id))!)).toBeUndefined();
  });

  it('does not outlive a failure: a failed task has no video', async () => {
    const t = await archiving();
    const held = (await store.claimArchive(t.id, 1))!;
    await store.recordVideo(t.id, video, held.archive_lease_until!);
    const failed = await store.markFailed(t, 'archive_failed', 'the bucket refused part 1');
    expect(failed).not.toHaveProperty('video_key');
    expect(recordedVideo(failed!)).toBeUndefined();
  });
});

describe('TaskStore.markSucceeded', () => {
  it('finishes an archiving task with its video', async () => {
    const t = await archiving();
    await store.claimArchive(t.id, 1);
    clock.advance(5000);
    const done = await store.markSucceeded(t, video);
    expect(done).toMatchObject({
      state: 'succeeded',
      progress: 100,
      completed_at: clock.now(),
      video_key: video.key,
      video_bytes: video.bytes,
      video_sha256: video.sha256,
      video_content_type: 'video/mp4',
    });
    expect(done).not.toHaveProperty('archive_lease_until');
  });

  it('calls a video short when it lacks more than half a second of the duration asked', () => {
    expect(isShortVideo(10, 9.5)).toBe(false);
    expect(isShortVideo(10, 9.49)).toBe(true);
    expect(isShortVideo(10, 10.04)).toBe(false);
    expect(isShortVideo(10, undefined)).toBe(false);
  });

  it('records what the video measures, and marks it short only when it is', async () => {
    const measured = { ...video, durationSeconds: 4.2, width: 180, height: 320, codec: 'hvc1' };
    const short = await archiving();
    expect(await store.markSucceeded(short, { ...measured, short: true })).toMatchObject({
      video_duration_seconds: 4.2,
      video_width: 180,
      video_height: 320,
      video_codec: 'hvc1',
      video_short: true,
    });
    const full = await archiving();
    const done = await store.markSucceeded(full, { ...measured, short: false });
    expect(done).toMatchObject({ video_duration_seconds: 4.2, video_codec: 'hvc1' });
    expect(done).not.toHaveProperty('video_short');
  });

  it.each(['queued', 'submitted', 'in_progress'] as const)('does not apply to a %s task', async (state) => {
    const t = await created({ state });
    expect(await store.markSucceeded(t, video)).toBeUndefined();
    expect((await store.get(t.id))!.state).toBe(state);
  });

  it('applies only once', async () => {
    const t = await archiving();
    await store.markSucceeded(t, video);
    expect(await store.markSucceeded(t, { ...video, bytes: 1 })).toBeUndefined();
    expect((await store.get(t.id))!.video_bytes).toBe(1234);
  });

  it('does nothing for an unknown task', async () => {
    expect(await store.markSucceeded({ id: 'task_ghost' }, video)).toBeUndefined();
    expect(await store.get('task_ghost')).toBeUndefined();
  });
});

describe('TaskStore.markFailed', () => {
  it.each(['queued', 'submitted', 'in_progress', 'archiving'] as const)('fails a %s task with its code and reason', async (state) => {
    const t = await created({ state });
    expect(await store.markFailed(t, 'timeout', 'too slow')).toMatchObject({
      state: 'failed',
      error_code: 'timeout',
      error_message: 'too slow',
      completed_at: clock.now(),
    });
  });

  it('never fails a task that succeeded', async () => {
    const t = await archiving();
    await store.markSucceeded(t, video);
    expect(await store.markFailed(t, 'timeout', 'late reconcile')).toBeUndefined();
    const after = await store.get(t.id);
    expect(after).toMatchObject({ state: 'succeeded', video_key: video.key });
    expect(after).not.toHaveProperty('error_code');
  });

  it('never fails a task twice: the first reason stands', async () => {
    const t = await created();
    await store.markFailed(t, 'upstream_rejected', 'prompt violates content policy');
    expect(await store.markFailed(t, 'timeout', 'too slow')).toBeUndefined();
    expect(await store.get(t.id)).toMatchObject({ error_code: 'upstream_rejected', error_message: 'prompt violates content policy' });
  });

  it('does not let a failed task succeed afterwards', async () => {
    const t = await archiving();
    await store.markFailed(t, 'timeout', 'too slow');
    expect(await store.markSucceeded(t, video)).toBeUndefined();
  });
});

describe('a finished task and the reconciler’s index', () => {
  it('without a callback_url leaves the index: nothing more is owed', async () => {
    const t = await archiving();
    const done = await store.markSucceeded(t, video);
    expect(done).not.toHaveProperty('open');
    expect(done).not.toHaveProperty('due_at');
    expect(done).not.toHaveProperty('notify_status');
    clock.advance(30 * 24 * HOUR);
    expect(await store.dueTasks(100)).toEqual([]);
  });

  it('failed without a callback_url leaves the index too', async () => {
    const t = await created();
    const failed = await store.markFailed(t, 'timeout', 'too slow');
    expect(failed).not.toHaveProperty('open');
    clock.advance(30 * 24 * HOUR);
    expect(await store.dueTasks(100)).toEqual([]);
  });

  it('with a callback_url stays open, its notification pending, due after the grace period', async () => {
    const t = await archiving({ callback_url: 'https://hooks.example.com/v' });
    const done = await store.markSucceeded(t, video);
    expect(done).toMatchObject({ open: expect.stringMatching(/^open#\d+$/), notify_status: 'pending', due_at: clock.now() + NOTIFY_GRACE_MS });
    expect(await store.dueTasks(100)).toEqual([]);
    clock.advance(NOTIFY_GRACE_MS);
    expect((await store.dueTasks(100)).map((d) => d.id)).toEqual([t.id]);
  });

  it('leaves the index once its notification is delivered', async () => {
    const t = await created({ callback_url: 'https://hooks.example.com/v' });
    await store.markFailed(t, 'upstream_rejected', 'no');
    const delivered = await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 204' }, { delivered: true });
    expect(delivered).toMatchObject({ notify_status: 'delivered', notify_attempts: 1, notify_first_at: clock.now() });
    expect(delivered!.notify_log).toEqual([{ at: clock.now(), attempt: 1, outcome: 'HTTP 204' }]);
    expect(delivered).not.toHaveProperty('open');
    expect(delivered).not.toHaveProperty('due_at');
    clock.advance(30 * 24 * HOUR);
    expect(await store.dueTasks(100)).toEqual([]);
  });
});

describe('TaskStore.recordNotifyAttempt', () => {
  async function finishedWithWebhook() {
    const t = await created({ callback_url: 'https://hooks.example.com/v' });
    await store.markFailed(t, 'timeout', 'too slow');
    return t;
  }

  it('notifies once: after delivery, another attempt is refused', async () => {
    const t = await finishedWithWebhook();
    expect(await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 200' }, { delivered: true })).toBeDefined();
    expect(await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 200' }, { delivered: true })).toBeUndefined();
    expect(await store.recordNotifyAttempt(t.id, { attempt: 2, outcome: 'HTTP 500' }, { nextAt: clock.now() + 1 })).toBeUndefined();
    expect((await store.get(t.id))!.notify_log).toHaveLength(1);
  });

  it('keeps a failed attempt pending, due again at the time given, with the attempt logged', async () => {
    const t = await finishedWithWebhook();
    const firstAt = clock.now();
    const after1 = await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 500' }, { nextAt: firstAt + 60_000 });
    expect(after1).toMatchObject({ notify_status: 'pending', open: expect.stringMatching(/^open#\d+$/), due_at: firstAt + 60_000, notify_first_at: firstAt });
    clock.advance(60_000);
    const after2 = await store.recordNotifyAttempt(t.id, { attempt: 2, outcome: 'timeout' }, { nextAt: clock.now() + 120_000 });
    expect(after2).toMatchObject({ notify_attempts: 2, notify_first_at: firstAt });
    expect(after2!.notify_log!.map((e) => e.outcome)).toEqual(['HTTP 500', 'timeout']);
  });

  it('closes an abandoned notification for good', async () => {
    const t = await finishedWithWebhook();
    expect(await store.recordNotifyAttempt(t.id, { attempt: 17, outcome: 'HTTP 500' }, { abandoned: true })).toMatchObject({
      notify_status: 'abandoned',
    });
    expect(await store.recordNotifyAttempt(t.id, { attempt: 18, outcome: 'HTTP 200' }, { delivered: true })).toBeUndefined();
  });

  it('is refused for a task that has not finished', async () => {
    const t = await created({ callback_url: 'https://hooks.example.com/v' });
    expect(await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 200' }, { delivered: true })).toBeUndefined();
  });

  it('is refused for a task without a webhook', async () => {
    const t = await created();
    await store.markFailed(t, 'timeout', 'too slow');
    expect(await store.recordNotifyAttempt(t.id, { attempt: 1, outcome: 'HTTP 200' }, { delivered: true })).toBeUndefined();
  });

  it('keeps only the last 30 attempts in the log', async () => {
    const t = await finishedWithWebhook();
    for (let attempt = 1; attempt <= 33; attempt++)
      await store.recordNotifyAttempt(t.id, { attempt, outcome: `HTTP 50${attempt % 10}` }, { nextAt: clock.now() + 1 });
    const log = (await store.get(t.id))!.notify_log!;
    expect(log).toHaveLength(30);
    expect(log[0]!.attempt).toBe(4);
    expect(log.at(-1)!.attempt).toBe(33);
  });
});

describe('TaskStore.listByOwner', () => {
  async function tasksOf(owner: string, count: number) {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      clock.advance(1000);
      ids.push((await created({ owner })).id);
    }
    return ids;
  }

  it('lists the owner’s tasks newest first', async () => {
    const ids = await tasksOf('owner-a', 3);
    const { tasks, hasMore } = await store.listByOwner('owner-a', 10);
    expect(tasks.map((t) => t.id)).toEqual([...ids].reverse());
    expect(hasMore).toBe(false);
  });

  it('pages through with the last id of a page as the cursor', async () => {
    const ids = (await tasksOf('owner-a', 5)).reverse();
    const page1 = await store.listByOwner('owner-a', 2);
    expect(page1).toMatchObject({ hasMore: true });
    expect(page1.tasks.map((t) => t.id)).toEqual(ids.slice(0, 2));
    const page2 = await store.listByOwner('owner-a', 2, page1.tasks.at(-1)!.id);
    expect(page2.tasks.map((t) => t.id)).toEqual(ids.slice(2, 4));
    expect(page2.hasMore).toBe(true);
    const page3 = await store.listByOwner('owner-a', 2, page2.tasks.at(-1)!.id);
    expect(page3.tasks.map((t) => t.id)).toEqual(ids.slice(4));
    expect(page3.hasMore).toBe(false);
  });

  it('says there is no more when the last page is exactly full', async () => {
    await tasksOf('owner-a', 2);
    expect((await store.listByOwner('owner-a', 2)).hasMore).toBe(false);
  });

  it('shows no owner another’s tasks', async () => {
    const mine = await tasksOf('owner-a', 2);
    const theirs = await tasksOf('owner-b', 2);
    expect((await store.listByOwner('owner-a', 10)).tasks.map((t) => t.id).sort()).toEqual(mine.sort());
    expect((await store.listByOwner('owner-b', 10)).tasks.map((t) => t.id).sort()).toEqual(theirs.sort());
    expect((await store.listByOwner('owner-c', 10)).tasks).toEqual([]);
  });

  it('lists whole, current task records though the owner index holds only their keys', async () => {
    const t = await created({ owner: 'owner-a', callback_url: 'https://hooks.example.com/v' });
    await store.markSubmitted(t.id, 'up-1', clock.now() + 300_000);
    const [listed] = (await store.listByOwner('owner-a', 10)).tasks;
    expect(listed).toEqual(await store.get(t.id));
    expect(listed).toMatchObject({ state: 'submitted', upstream_id: 'up-1', prompt: t.prompt, callback_url: 'https://hooks.example.com/v' });
  });

  it('leaves out a task deleted between the index read and the task read, and still pages on', async () => {
    const ids = (await tasksOf('owner-a', 3)).reverse();
    const deleting = new TaskStore(
      {
        send: async (command: { constructor: { name: string } }) => {
          if (command.constructor.name === 'BatchGetCommand') await store.remove(ids[1]!);
          return dynamo.db.send(command as never);
        },
      } as never,
      tableName,
      clock,
    );
    const page = await deleting.listByOwner('owner-a', 3);
    expect(page.tasks.map((t) => t.id)).toEqual([ids[0], ids[2]]);
    expect(page.hasMore).toBe(false);
  });

  it('reads a page of more than 100 tasks in batches, and asks again for the keys DynamoDB left unprocessed', async () => {
    const ids = await tasksOf('owner-a', 130);
    const batches: number[] = [];
    const stingy = new TaskStore(
      {
        send: async (command: { constructor: { name: string }; input: { RequestItems: Record<string, { Keys: unknown[] }> } }) => {
          if (command.constructor.name !== 'BatchGetCommand') return dynamo.db.send(command as never);
          const keys = command.input.RequestItems[tableName]!.Keys;
          batches.push(keys.length);
          // The first answer of each batch holds only half of it, as DynamoDB may under load.
          if (batches.length % 2 === 1 && keys.length > 1) {
            const half = Math.ceil(keys.length / 2);
            command.input.RequestItems[tableName]!.Keys = keys.slice(0, half);
            const answer = (await dynamo.db.send(command as never)) as Record<string, unknown>;
            return { ...answer, UnprocessedKeys: { [tableName]: { Keys: keys.slice(half), ConsistentRead: true } } };
          }
          return dynamo.db.send(command as never);
        },
      } as never,
      tableName,
      clock,
    );
    const page = await stingy.listByOwner('owner-a', 130);
    expect(page.tasks.map((t) => t.id)).toEqual([...ids].reverse());
    expect(batches).toEqual([100, 50, 30, 15]);
  });
});

describe('TaskStore.dueTasks', () => {
  it('returns only the open tasks whose time has come, oldest due first', async () => {
    const now = clock.now();
    const dueLater = await created({ due_at: now + 60_000 });
    const dueFirst = await created({ due_at: now - 5000 });
    const dueNow = await created({ due_at: now });
    const closed = await created({ due_at: now - 10_000 });
    await store.markFailed(closed, 'timeout', 'too slow'); // no webhook: leaves the index
    expect((await store.dueTasks(100)).map((t) => t.id)).toEqual([dueFirst.id, dueNow.id]);
    clock.advance(60_000);
    expect((await store.dueTasks(100)).map((t) => t.id)).toEqual([dueFirst.id, dueNow.id, dueLater.id]);
  });

  it('returns at most the number asked for', async () => {
    for (let i = 0; i < 5; i++) await created({ due_at: clock.now() - i });
    expect(await store.dueTasks(3)).toHaveLength(3);
  });

  it('does not return a task whose next check was moved later', async () => {
    const t = await created({ due_at: clock.now() - 1 });
    await store.reschedule(t.id, 'queued', clock.now() + 60_000);
    expect(await store.dueTasks(100)).toEqual([]);
  });
});

describe('the sharded due index', () => {
  const indexKeyOf = async (id: string) =>
    (await dynamo.db.send(new GetCommand({ TableName: tableName, Key: { pk: `TASK#${id}` }, ConsistentRead: true }))).Item?.open as string | undefined;

  it("a task's shard comes from its id: always the same one, and the shards share the tasks evenly", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 8000; i++) {
      const id = task().id;
      expect(dueKey(id, 8)).toBe(dueKey(id, 8));
      counts.set(dueKey(id, 8), (counts.get(dueKey(id, 8)) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(Array.from({ length: 8 }, (_, i) => `open#${i}`).sort());
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(150);
    expect(dueKey(task().id, 1)).toBe('open#0');
    expect(Number(dueKey(task().id, 1000).slice(5))).toBeLessThan(MAX_DUE_SHARDS);
  });

  it('tasks in every shard are read together, oldest due first', async () => {
    const now = clock.now();
    const made = [];
    for (let i = 0; i < 40; i++) made.push(await created({ due_at: now - 1000 + i }));
    const keys = new Set(await Promise.all(made.map((t) => indexKeyOf(t.id))));
    expect(keys.size).toBeGreaterThanOrEqual(6);
    expect((await store.dueTasks(100)).map((t) => t.id)).toEqual(made.map((t) => t.id));
    expect((await store.dueTasks(10)).map((t) => t.id)).toEqual(made.slice(0, 10).map((t) => t.id));
    expect((await store.openTasks(100)).map((t) => t.id)).toEqual(made.map((t) => t.id));
    // One shard alone, as the reconciler reads it.
    const first = [...keys][0]!;
    const inFirst = (await store.dueTasks(100, first)).map((t) => t.id);
    expect(inFirst.length).toBeGreaterThan(0);
    for (const id of inFirst) expect(await indexKeyOf(id)).toBe(first);
  });

  it('a task written before the index was sharded is still found, and moves to its shard at its next change', async () => {
    const old = task({ due_at: clock.now() - 1 });
    await dynamo.db.send(new PutCommand({ TableName: tableName, Item: { pk: `TASK#${old.id}`, ...old, open: 'open' } }));
    expect((await store.dueTasks(100)).map((t) => t.id)).toEqual([old.id]);
    await store.reschedule(old.id, 'queued', clock.now() - 1);
    expect(await indexKeyOf(old.id)).toBe(dueKey(old.id, 8));
    expect((await store.dueTasks(100)).map((t) => t.id)).toEqual([old.id]);
  });

  it('a reader configured with another shard count still finds every task', async () => {
    const writer = new TaskStore(dynamo.db, tableName, clock, 3);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const t = task({ due_at: clock.now() - 100 + i });
      await writer.create(t);
      ids.push(t.id);
    }
    expect(new Set(await Promise.all(ids.map(indexKeyOf)))).toEqual(new Set(['open#0', 'open#1', 'open#2']));
    expect((await new TaskStore(dynamo.db, tableName, clock, 16).dueTasks(100)).map((t) => t.id)).toEqual(ids);
  });

  it('a finished task leaves the index, whichever shard it was in', async () => {
    const t = await created({ due_at: clock.now() - 1 });
    await store.markFailed(t, 'timeout', 'too slow');
    expect(await indexKeyOf(t.id)).toBeUndefined();
    expect(await store.dueTasks(100)).toEqual([]);
  });
});

describe('TaskStore.reschedule', () => {
  it('only moves a task still in the state the caller saw', async () => {
    const t = await created();
    await store.markSubmitted(t.id, 'up-1', clock.now());
    expect(await store.reschedule(t.id, 'queued', clock.now() + 1)).toBeUndefined();
    expect(await store.reschedule(t.id, 'submitted', clock.now() + 99)).toMatchObject({ due_at: clock.now() + 99 });
  });
});
