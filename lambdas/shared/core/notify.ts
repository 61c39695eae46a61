import { Webhook } from 'standardwebhooks';
import type { NotifyJob } from '../contracts/jobs';
import type { TaskRecord } from '../contracts/task';
import { backoffSeconds } from '../backoff';
import { logger } from '../logger';
import { clientUrlPolicy, postJson } from '../outbound';
import { MAX_DELAY_SECONDS } from '../aws/sqs';
import { NOTIFY_GRACE_MS } from '../task-store';
import type { Needs } from './deps';
import { taskView } from './view';
import { metric, record, unit } from '../metrics';

type NotifyNeeds = Needs<'config' | 'store' | 'keys' | 'videos' | 'queues'>;

/** Retry waits: from 30 s doubling up to 2 h, so a day of retries is about 17 attempts. */
export const NOTIFY_BASE_SECONDS = 30;
export const NOTIFY_CAP_SECONDS = 2 * 3600;

/** The id a client can deduplicate on: one per task and final status. */
export const webhookId = (taskId: string, status: string) => `${taskId}.${status}`;

/**
 * What a task's webhook says, in the dialect it was made in: the seed's task view, or
 * OpenAI's event (`video.completed` / `video.failed`, the Video's id). The id is the same on
 * every attempt, so a client deduplicates on it.
 */
async function webhookBody(task: TaskRecord, now: number, d: Needs<'videos'>): Promise<{ id: string; payload: string }> {
  if (task.dialect === 'openai') {
    const type = task.state === 'succeeded' ? 'video.completed' : 'video.failed';
    const id = `evt_${task.id}_${type.slice(6)}`;
    return { id, payload: JSON.stringify({ id, object: 'event', created_at: Math.floor((task.completed_at ?? now) / 1000), type, data: { id: task.id } }) };
  }
  const view = await taskView(task, d.videos);
  return { id: webhookId(task.id, view.status), payload: JSON.stringify(view) };
}

/**
 * One webhook attempt: POST the task view to the task's `callback_url` (the client's, or its
 * key's default webhook, copied in at submit), signed per
 * Standard Webhooks with the key's `whsec_` secret. Any 2xx is delivery; anything else is
 * retried with backoff for `NOTIFY_RETRY_SECONDS`, each attempt recorded on the task.
 */
export async function notifyTask(job: NotifyJob, d: NotifyNeeds): Promise<void> {
  const task = await d.store.get(job.taskId);
  if (!task?.callback_url || task.notify_status !== 'pending') return;
  const now = d.store.now();
  if (job.notBefore !== undefined && job.notBefore > now) {
    // Waits longer than SQS's 15-minute delay are made of several hops.
    await d.queues.notify(job, (job.notBefore - now) / 1000);
    return;
  }

  const key = await d.keys.byHash(task.owner);
  let outcome: string;
  let delivered = false;
  if (!key) {
    outcome = 'the API key that made the task no longer exists';
  } else {
    const { id, payload } = await webhookBody(task, now, d);
    const signature = new Webhook(key.webhook_secret).sign(id, new Date(now), payload);
    try {
      const response = await postJson(
        task.callback_url,
        payload,
        {
          'content-type': 'application/json',
          'user-agent': 'video-task-gateway',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now / 1000)),
          'webhook-signature': signature,
        },
        { policy: clientUrlPolicy(d.config.LOCAL_MODE), timeoutMs: d.config.WEBHOOK_TIMEOUT_MS },
      );
      delivered = response.status >= 200 && response.status < 300;
      outcome = `HTTP ${response.status}`;
    } catch (error) {
      outcome = (error as Error).message;
    }
  }

  record(metric.webhookDeliveries, 1, unit.Count, { outcome: delivered ? 'delivered' : 'failed' });
  if (delivered) {
    await d.store.recordNotifyAttempt(task.id, { attempt: job.attempt, outcome }, { delivered: true });
    logger.info('webhook delivered', { taskId: task.id, attempt: job.attempt });
    return;
  }
  const firstAt = task.notify_first_at ?? now;
  if (!key || now - firstAt >= d.config.NOTIFY_RETRY_SECONDS * 1000) {
    await d.store.recordNotifyAttempt(task.id, { attempt: job.attempt, outcome }, { abandoned: true });
    logger.error('webhook abandoned', { taskId: task.id, attempts: job.attempt, outcome });
    record(metric.webhookDeliveries, 1, unit.Count, { outcome: 'abandoned' });
    return;
  }
  const delay = backoffSeconds(job.attempt, { base: NOTIFY_BASE_SECONDS, cap: NOTIFY_CAP_SECONDS });
  const retryAt = now + delay * 1000;
  logger.warn('webhook not delivered, will retry', { taskId: task.id, attempt: job.attempt, retryInSeconds: delay, outcome });
  await d.store.recordNotifyAttempt(task.id, { attempt: job.attempt, outcome }, { nextAt: retryAt + NOTIFY_GRACE_MS });
  // A wait within the queue's own delay is left to the queue; longer ones carry their end time.
  const next = { taskId: task.id, attempt: job.attempt + 1, ...(delay > MAX_DELAY_SECONDS ? { notBefore: retryAt } : {}) };
  await d.queues.notify(next, Math.min(delay, MAX_DELAY_SECONDS));
}
