import type { TaskRecord } from '../contracts/task';
import { logger } from '../logger';
import type { UpstreamProvider } from '../providers/provider';
import { ARCHIVE_LEASE_MS, NOTIFY_GRACE_MS } from '../task-store';
import { applyUpstreamStatus, taskUpstream } from './callback';
import type { Needs } from './deps';
import { afterFinish, nextCheck, settleUsage } from './finish';
import { startPolling } from './poll';
import { submitUpstream } from './submit';
import { metric, record, unit } from '../metrics';

type ReconcileNeeds = Needs<'config' | 'store' | 'usage' | 'upstreams' | 'circuits' | 'queues' | 'callbackSecret'>;

/** A task still archiving this long after its deadline has had every retry it will get. */
const ARCHIVE_OVERRUN_MS = 3600_000;
const BATCH = 100;
const PARALLEL = 8;

export interface ReconcileSummary {
  examined: number;
  resubmitted: number;
  polled: number;
  timedOut: number;
  archiveRequeued: number;
  notifyRequeued: number;
  errors: number;
}

/**
 * Every minute: whatever the gateway still owes and whose time has come. Queued tasks are
 * resubmitted, silent ones polled (callbacks get lost), lost archive and webhook jobs sent
 * again, usage left unsettled settled, and tasks past their deadline failed with `timeout`.
 */
export async function reconcile(d: ReconcileNeeds, maxTasks = 1000): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = { examined: 0, resubmitted: 0, polled: 0, timedOut: 0, archiveRequeued: 0, notifyRequeued: 0, errors: 0 };
  const seen = new Set<string>();
  while (summary.examined < maxTasks) {
    const due = (await d.store.dueTasks(BATCH)).filter((t) => !seen.has(t.id));
    if (due.length === 0) break;
    for (let i = 0; i < due.length; i += PARALLEL) {
      await Promise.all(
        due.slice(i, i + PARALLEL).map(async (task) => {
          seen.add(task.id);
          summary.examined++;
          try {
            await reconcileTask(task, d, summary);
          } catch (error) {
            summary.errors++;
            logger.error('reconcile failed for task', { taskId: task.id, error: error as Error });
          }
        }),
      );
    }
  }
  if (summary.examined) {
    logger.info('reconciled', { ...summary });
    record(metric.reconciledTasks, summary.examined, unit.Count);
  }
  return summary;
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
      try {
        provider = await taskUpstream(task, d);
        await applyUpstreamStatus(task, await provider.status(task.upstream_id ?? ''), d);
      } catch (error) {
        logger.warn('upstream poll failed', { taskId: task.id, reason: (error as Error).message });
      }
      const after = await d.store.get(task.id);
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
