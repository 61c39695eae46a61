import { beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lambdas/shared/config';
import type { Gateway } from '../../lambdas/shared/core/deps';
import { pollDelaySeconds, pollTask, startPolling } from '../../lambdas/shared/core/poll';
import { UpstreamError, type UpstreamProvider, type UpstreamStatus } from '../../lambdas/shared/providers/provider';
import { TaskStore } from '../../lambdas/shared/task-store';
import { UsageStore } from '../../lambdas/shared/usage';
import { taskRecord } from '../fixtures/task';
import { embeddedDynamo } from './dynalite';

const dynamo = embeddedDynamo();

let usage: UsageStore;
let t: number;
let store: TaskStore;
let sent: { queue: string; job: unknown; delay?: number }[];
let answers: (UpstreamStatus | Error)[];
let polled: string[];

const config = parseConfig({
  TABLE_NAME: 'unused',
  BUCKET_NAME: 'videos',
  ARCHIVE_QUEUE_URL: 'https://sqs.example/archive',
  NOTIFY_QUEUE_URL: 'https://sqs.example/notify',
  POLL_QUEUE_URL: 'https://sqs.example/poll',
  PUBLIC_BASE_URL: 'https://api.example',
  UPSTREAM_BASE_URL: 'https://upstream.example',
  UPSTREAM_KEY: 'k',
  CALLBACK_SECRET: 'c',
  POLL_FIRST_SECONDS: '4',
  POLL_MAX_SECONDS: '30',
});

const provider: UpstreamProvider = {
  name: 'reseller',
  kind: 'openai',
  callsBack: false,
  submit: async () => ({ upstreamId: 'unused' }),
  async status(id) {
    polled.push(id);
    const answer = answers.shift() ?? { phase: 'running', state: 'in_progress', progress: 10, message: '' };
    if (answer instanceof Error) throw answer;
    return answer;
  },
  parseCallback: async () => {
    throw new Error('never calls back');
  },
};

const record = (queue: string) => async (job: unknown, delay?: number) => void sent.push({ queue, job, delay });
/** The registry holds only the task's own upstream (`reseller`), not the configured first one. */
const deps = (): Pick<Gateway, 'config' | 'store' | 'usage' | 'upstreams' | 'queues'> => ({
  config,
  store,
  usage,
  upstreams: { get: async (name) => (name === provider.name ? provider : Promise.reject(new Error(`asked for upstream ${name}`))) },
  queues: { archive: record('archive'), notify: record('notify'), poll: record('poll') },
});

beforeEach(async () => {
  const name = await dynamo.newTable('poll');
  t = Date.UTC(2026, 11, 2, 12);
  store = new TaskStore(dynamo.db, name, { now: () => t });
  usage = new UsageStore(dynamo.db, name);
  sent = [];
  answers = [];
  polled = [];
});

async function submittedTask(overrides = {}) {
  const task = taskRecord(t, { state: 'submitted', upstream: 'reseller', upstream_id: 'video_123', ...overrides });
  await store.create(task);
  return task;
}

describe('polling an upstream that never calls back', () => {
  it('the cadence: a few seconds first, then doubling up to the ceiling', () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((n) => pollDelaySeconds(n, config))).toEqual([4, 8, 16, 30, 30, 30, 30]);
  });

  it('starts one chain for a poll-only upstream and none for one that calls back', async () => {
    const task = await submittedTask();
    await startPolling(task, provider, deps());
    await startPolling(task, { callsBack: true }, deps());
    expect(sent).toEqual([{ queue: 'poll', job: { taskId: task.id, attempt: 1 }, delay: 4 }]);
  });

  it('a running job: progress recorded, the next poll queued with a longer delay', async () => {
    const task = await submittedTask();
    answers.push({ phase: 'running', state: 'in_progress', progress: 40, message: '' });
    await pollTask({ taskId: task.id, attempt: 1 }, deps());
    expect(polled).toEqual(['video_123']);
    expect(await store.get(task.id)).toMatchObject({ state: 'in_progress', progress: 40, poll_count: 1, heard_at: t });
    expect(sent).toEqual([{ queue: 'poll', job: { taskId: task.id, attempt: 2 }, delay: 8 }]);
  });

  it('a finished job: the archive job is queued and the chain ends', async () => {
    const task = await submittedTask();
    answers.push({ phase: 'succeeded', state: 'completed', progress: 100, videoUrl: 'https://upstream.example/v.mp4', message: '' });
    await pollTask({ taskId: task.id, attempt: 3 }, deps());
    expect(await store.get(task.id)).toMatchObject({ state: 'archiving', upstream_video_url: 'https://upstream.example/v.mp4' });
    expect(sent).toEqual([{ queue: 'archive', job: { taskId: task.id, attempt: 1 }, delay: undefined }]);
  });

  it('a failed job fails the task with the upstream\'s message and ends the chain', async () => {
    const task = await submittedTask({ callback_url: 'https://client.example/hook' });
    answers.push({ phase: 'failed', state: 'failed', progress: 0, message: 'moderation blocked the output' });
    await pollTask({ taskId: task.id, attempt: 1 }, deps());
    expect(await store.get(task.id)).toMatchObject({ state: 'failed', error_code: 'upstream_failed', error_message: 'moderation blocked the output' });
    expect(sent.map((s) => s.queue)).toEqual(['notify']);
  });

  it('a failed poll is no verdict: the chain goes on', async () => {
    const task = await submittedTask();
    answers.push(new UpstreamError('unavailable', 'upstream answered 503: overloaded', 503));
    await pollTask({ taskId: task.id, attempt: 2 }, deps());
    expect((await store.get(task.id))?.state).toBe('submitted');
    expect(sent).toEqual([{ queue: 'poll', job: { taskId: task.id, attempt: 3 }, delay: 16 }]);
  });

  it('a duplicate message (an attempt already made) changes nothing and sends nothing', async () => {
    const task = await submittedTask();
    await pollTask({ taskId: task.id, attempt: 1 }, deps());
    sent = [];
    await pollTask({ taskId: task.id, attempt: 1 }, deps());
    expect(polled).toHaveLength(1);
    expect(sent).toEqual([]);
  });

  it('a task that has moved on, or is past its deadline, is not polled', async () => {
    const archived = await submittedTask({ state: 'archiving' });
    await pollTask({ taskId: archived.id, attempt: 1 }, deps());
    const late = await submittedTask({ deadline_at: t - 1 });
    await pollTask({ taskId: late.id, attempt: 1 }, deps());
    expect(polled).toEqual([]);
    expect(sent).toEqual([]);
  });
});
