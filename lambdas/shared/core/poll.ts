import type { PollJob } from '../contracts/jobs';
import type { TaskRecord } from '../contracts/task';
import { logger } from '../logger';
import type { UpstreamProvider } from '../providers/provider';
import { applyUpstreamStatus } from './callback';
import { taskUpstream } from './task-upstream';
import type { Needs } from './deps';
import { metric, record, unit } from '../metrics';

type PollNeeds = Needs<'config' | 'store' | 'usage' | 'upstreams' | 'queues'>;

/** The wait before the `attempt`-th poll: the first after POLL_FIRST_SECONDS, then doubling up to POLL_MAX_SECONDS. */
export const pollDelaySeconds = (attempt: number, c: Pick<PollNeeds['config'], 'POLL_FIRST_SECONDS' | 'POLL_MAX_SECONDS'>) =>
  Math.min(c.POLL_MAX_SECONDS, c.POLL_FIRST_SECONDS * 2 ** Math.min(attempt - 1, 20));

/**
 * Start (or restart) the poll chain of a task whose upstream never calls back: one delayed
 * message at a time, each poll sending the next. Upstreams that call back are not polled
 * here; the reconciler asks them only when they have been silent too long.
 */
export async function startPolling(task: Pick<TaskRecord, 'id' | 'poll_count'>, provider: Pick<UpstreamProvider, 'callsBack'>, d: Needs<'config' | 'queues'>) {
  if (provider.callsBack) return;
  const attempt = (task.poll_count ?? 0) + 1;
  await d.queues.poll({ taskId: task.id, attempt }, pollDelaySeconds(attempt, d.config));
}

/**
 * One poll of a poll-only upstream: its answer moves the task as a callback would, and
 * unless the task is finished the next poll is queued with a longer delay. A failed poll
 * is no verdict on the job: the chain goes on, and the reconciler (which polls silent
 * tasks and fails them at their deadline) stays the safety net for a lost chain.
 */
export async function pollTask(job: PollJob, d: PollNeeds): Promise<void> {
  const task = await d.store.claimPoll(job.taskId, job.attempt);
  if (!task) return; // a duplicate message, or the task is no longer at its upstream
  if (d.store.now() >= task.deadline_at) return; // the reconciler fails it with `timeout`
  let finished = false;
  record(metric.polls, 1, unit.Count, { upstream: task.upstream });
  try {
    const provider = await taskUpstream(task, d);
    const status = await provider.status(task.upstream_id ?? '');
    finished = status.phase === 'succeeded' || status.phase === 'failed';
    await applyUpstreamStatus(task, status, d);
  } catch (error) {
    logger.warn('upstream poll failed', { taskId: task.id, attempt: job.attempt, reason: (error as Error).message });
  }
  if (finished) return;
  const next = job.attempt + 1;
  await d.queues.poll({ taskId: task.id, attempt: next }, pollDelaySeconds(next, d.config));
}
