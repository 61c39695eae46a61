import { modelOf } from '../catalog';
import type { TaskRecord } from '../contracts/task';
import type { Needs } from './deps';
import { metric, record, unit } from '../metrics';

export type FinishNeeds = Needs<'queues' | 'store' | 'usage' | 'config'>;

/**
 * What follows a task's last transition: its usage settled, then its webhook, when it has
 * one. Should either be lost (a crash right after the transition), the reconciler finds the
 * task still owing them and does them again; usage is settled once however often it is asked.
 */
export async function afterFinish(task: TaskRecord | undefined, d: FinishNeeds): Promise<void> {
  if (!task) return;
  countFinish(task);
  await settleUsage(task, d);
  if (task.callback_url && task.notify_status === 'pending') await d.queues.notify({ taskId: task.id, attempt: 1 });
}

/**
 * An ended task's reservation becomes its usage: the seconds measured in its video and their
 * cost (the upstream's own figure, or the seconds times the price of the route that made it)
 * when it succeeded, nothing when it failed, timed out or was cancelled.
 */
export async function settleUsage(task: TaskRecord, d: Needs<'store' | 'usage' | 'config'>): Promise<void> {
  if (task.usage_status !== 'reserved' || (task.state !== 'succeeded' && task.state !== 'failed')) return;
  const succeeded = task.state === 'succeeded';
  // A video stored before measurements were taken is counted as asked.
  const deliveredSeconds = succeeded ? (task.video_duration_seconds ?? task.duration) : 0;
  const cost = succeeded ? Math.round((task.upstream_cost ?? deliveredSeconds * (routePrice(task, d.config) ?? 0)) * 1e6) / 1e6 : 0;
  await d.usage.settle(task, { succeeded, deliveredSeconds, cost });
  await d.store.markUsageSettled(task, cost);
}

/** The price per second of the route that served the task: found by its upstream and model id, the catalog may have moved it. */
function routePrice(task: TaskRecord, config: FinishNeeds['config']): number | undefined {
  const routes = modelOf(config.catalog.models, task.model)?.routes ?? [];
  const served = routes.find((r) => r.upstream === task.upstream && r.model === task.upstream_model) ?? routes[task.route ?? 0];
  return served?.pricePerSecond;
}

/** When to look at a task next: after `seconds`, but never after its deadline. */
export const nextCheck = (task: Pick<TaskRecord, 'deadline_at'>, now: number, seconds: number) =>
  Math.min(now + seconds * 1000, task.deadline_at);

/** A task's end, counted once: only the transition that finished it gets here with the task. */
function countFinish(task: TaskRecord) {
  if (task.state === 'succeeded') {
    record(metric.tasksSucceeded, 1, unit.Count, { model: task.model });
    if (task.completed_at !== undefined)
      record(metric.timeToVideo, (task.completed_at - task.created_at) / 1000, unit.Seconds, { model: task.model });
  } else if (task.state === 'failed') {
    record(metric.tasksFailed, 1, unit.Count, { model: task.model, code: task.error_code ?? 'failed' });
  }
}
