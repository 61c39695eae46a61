import type { TaskRecord } from '../contracts/task';
import type { Needs } from './deps';
import { metric, record, unit } from '../metrics';

/**
 * What follows a task's last transition: its webhook, when it has one. Should this send be
 * lost (a crash right after the transition), the reconciler finds the task still owing its
 * notification and sends it again.
 */
export async function afterFinish(task: TaskRecord | undefined, d: Needs<'queues'>): Promise<void> {
  if (task) countFinish(task);
  if (task?.callback_url && task.notify_status === 'pending') await d.queues.notify({ taskId: task.id, attempt: 1 });
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
