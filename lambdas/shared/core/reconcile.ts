import type { TaskRecord } from '../contracts/task';
import { logger } from '../logger';
import type { UpstreamProvider } from '../providers/provider';
import { ARCHIVE_LEASE_MS, NOTIFY_GRACE_MS } from '../task-store';
import { dueKeys } from '../table-schema';
import { applyUpstreamStatus } from './callback';
import { taskUpstream } from './task-upstream';
import type { Needs } from './deps';
import { afterFinish, nextCheck, settleUsage } from './finish';
import { startPolling } from './poll';
import { submitUpstream } from './submit';
import { metric, record, unit } from '../metrics';

type ReconcileNeeds = Needs<'config' | 'store' | 'usage' | 'upstreams' | 'circuits' | 'queues' | 'callbackSecret' | 'inputs'>;

/** A task still archiving this long after its deadline has had every retry it will get. */
const ARCHIVE_OVERRUN_MS = 3600_000;
/** Due tasks read per query of one shard. */
const BATCH = 100;
/** Tasks worked on at once, across all shards (each is a few table calls and maybe one upstream call). */
const PARALLEL = 32;

export interface ReconcileSummary {
  examined: number;
  resubmitted: number;
  polled: number;
  timedOut: number;
  archiveRequeued: number;
  notifyRequeued: number;
  errors: number;
}

export interface ReconcileLimits {
  /** Tasks one run takes at most. */
  maxTasks?: number;
  /** After this long a run takes no more tasks (the function's timeout is 5 minutes; the next run starts every minute). */
  timeBudgetMs?: number;
}

/**
 * Every minute: whatever the gateway still owes and whose time has come. Queued tasks are
 * resubmitted, silent ones polled (callbacks get lost), lost archive and webhook jobs sent
 * again, usage left unsettled settled, and tasks past their deadline failed with `timeout`.
 * Each due-index shard is read by its own loop, all at once; the work on the tasks they
 * find shares one bounded pool.
 */
export async function reconcile(d: ReconcileNeeds, limits: ReconcileLimits = {}): Promise<ReconcileSummary> {
  const { maxTasks = 50_000, timeBudgetMs = 240_000 } = limits;
  const summary: ReconcileSummary = { examined: 0, resubmitted: 0, polled: 0, timedOut: 0, archiveRequeued: 0, notifyRequeued: 0, errors: 0 };
  const stopAt = Date.now() + timeBudgetMs;
  const seen = new Set<string>();
  const pool = workPool(PARALLEL);
  const more = () => seen.size < maxTasks && Date.now() < stopAt;
  await Promise.all(
    dueKeys.map(async (key) => {
      while (more()) {
        const due = (await d.store.dueTasks(BATCH, key)).filter((t) => !seen.has(t.id));
        if (due.length === 0) break;
        await Promise.all(
          due.map((task) => {
            if (!more()) return;
            seen.add(task.id);
            return pool(async () => {
              summary.examined++;
              try {
                await reconcileTask(task, d, summary);
              } catch (error) {
                summary.errors++;
                logger.error('reconcile failed for task', { taskId: task.id, error: error as Error });
              }
            });
          }),
        );
      }
    }),
  );
  if (summary.examined) {
    logger.info('reconciled', { ...summary });
    record(metric.reconciledTasks, summary.examined, unit.Count);
  }
  return summary;
}

/** Runs the functions given to it, at most `size` at a time. */
function workPool(size: number): (work: () => Promise<void>) => Promise<void> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    // A finished worker hands its slot straight to the next in line, so the count never overshoots.
    if (running >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

async function reconcileTask(task: TaskRecord, d: ReconcileNeeds, summary: ReconcileSummary): Promise<void> {
  const now = d.store.now();
  const late = now >= task.deadline_at;
  const timeout = async () => {
    const failed = await d.store.markFailed(task, 'timeout', `the task did not finish within ${d.config.TASK_DEADLINE_SECONDS} seconds`);
    if (failed) summary.timedOut++;
    await afterFinish(failed, d);
  };

  switch (task.state) {
    case 'queued':
      // A submit still in flight ends its claim itself (its deferral is due by the deadline).
      if (late && (task.submit_lease_until ?? 0) < now) return timeout();
      if (await submitUpstream(task, d)) summary.resubmitted++;
      return;
    case 'submitted':
    case 'in_progress': {
      // Ask the upstream before giving up: the task may have finished and its callback been lost.
      summary.polled++;
      let provider: UpstreamProvider | undefined;
      let after: TaskRecord | undefined;
      try {
        provider = await taskUpstream(task, d);
        after = await applyUpstreamStatus(task, await provider.status(task.upstream_id ?? ''), d);
      } catch (error) {
        logger.warn('upstream poll failed', { taskId: task.id, reason: (error as Error).message });
      }
      // The task as the upstream's word left it; read only when that word changed nothing (or none came).
      after ??= await d.store.get(task.id);
      if (!after || (after.state !== 'submitted' && after.state !== 'in_progress')) return;
      if (late) return timeout();
      // No news: look again after the silence threshold (or at the deadline).
      if ((after.due_at ?? 0) <= now) await d.store.reschedule(task.id, after.state, nextCheck(task, now, d.config.SILENT_AFTER_SECONDS));
      // A poll-only task this silent has lost its poll chain: start it again.
      if (provider) await startPolling(after, provider, d);
      return;
    }
    case 'archiving': {
      if (now >= task.deadline_at + ARCHIVE_OVERRUN_MS && (task.archive_lease_until ?? 0) < now) {
        const failed = await d.store.markFailed(task, 'archive_failed', 'the video could not be archived before the deadline');
        await afterFinish(failed, d);
        return;
      }
      // The archive job was lost or its worker died: send it again, once per lease period.
      if ((task.archive_lease_until ?? 0) >= now) {
        await d.store.reschedule(task.id, 'archiving', task.archive_lease_until!);
        return;
      }
      if (await d.store.reschedule(task.id, 'archiving', now + ARCHIVE_LEASE_MS)) {
        summary.archiveRequeued++;
        await d.queues.archive({ taskId: task.id, attempt: (task.archive_attempts ?? 0) + 1 });
      }
      return;
    }
    case 'succeeded':
    case 'failed':
      // The worker that ended the task died before settling its usage: settled now, once.
      if (task.usage_status === 'reserved') await settleUsage(task, d);
      if (task.notify_status === 'pending' && (await d.store.reschedule(task.id, task.state, now + NOTIFY_GRACE_MS))) {
        summary.notifyRequeued++;
        await d.queues.notify({ taskId: task.id, attempt: (task.notify_attempts ?? 0) + 1 });
      }
      return;
  }
}
