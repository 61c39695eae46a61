import type { TaskRecord } from '../contracts/task';
import { ApiError, json, type HttpEvent, type HttpResult } from '../http';
import { logger } from '../logger';
import { UpstreamError } from '../providers/provider';
import { taskUpstream } from './task-upstream';
import type { Needs } from './deps';
import { afterFinish } from './finish';
import { taskView } from './view';

type CancelNeeds = Needs<'config' | 'store' | 'usage' | 'keys' | 'upstreams' | 'queues'>;

/** A cancelled task has no video: its view never needs a link. */
const noVideos = { presign: async (): Promise<never> => Promise.reject(new Error('a cancelled task has no video')) };

/**
 * `POST /v1/videos/generations/{id}/cancel`. A queued task is cancelled at once (no upstream
 * holds a job, or one may after an ambiguous answer, and its word no longer changes the task).
 * A task an upstream is rendering is cancelled once that upstream has stopped the job, where
 * its dialect can (fal, Replicate); elsewhere, and for a task already finished or being
 * archived, it is 409 `not_cancellable` and the task finishes as it would have (`conflict` is
 * only the race of a task that changed state during the cancel). The task fails with
 * `cancelled`, and its webhook is sent.
 */
export async function cancelTask(event: HttpEvent, d: CancelNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const task = await d.store.getOwned(event.pathParameters?.id ?? '', key.key_hash);
  if (!task) throw ApiError.notFound();
  return json(200, await taskView(await cancelOwned(task, d), noVideos));
}

/**
 * `DELETE /v1/videos/generations/{id}` and `DELETE /v1/videos/{id}`: a task not yet finished
 * is cancelled first; then its video and its record are gone (404 in both dialects after).
 */
export async function deleteTask(event: HttpEvent, d: CancelNeeds & Needs<'videos'>): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const task = await d.store.getOwned(event.pathParameters?.id ?? '', key.key_hash);
  if (!task) throw ApiError.notFound();
  const ended = task.state === 'succeeded' || task.state === 'failed' ? task : await cancelOwned(task, d);
  for (const key of [ended.video_key, ...Object.values(ended.renditions ?? {})]) if (key) await d.videos.remove(key);
  await d.store.remove(task.id);
  logger.info('task deleted by the client', { taskId: task.id });
  return json(200, { id: task.id, object: 'video.deleted', deleted: true });
}

/** Cancel the owner's task as the cancel route does; answers the ended task. */
async function cancelOwned(task: TaskRecord, d: CancelNeeds): Promise<TaskRecord> {
  if (task.state === 'submitted' || task.state === 'in_progress') await stopUpstreamJob(task, d);
  else if (task.state !== 'queued') throw finished(task);
  const cancelled = await d.store.markFailed(task, 'cancelled', 'cancelled by the client', [task.state]);
  if (!cancelled) {
    const now = await d.store.get(task.id);
    // The upstream's own word on the stopped job got there first: the task has ended as asked.
    if (now?.state === 'failed' && task.state !== 'queued') return now;
    // It moved on meanwhile (taken by an upstream, finished): say where it is now.
    throw now && now.state !== task.state ? finished(now) : new ApiError(409, 'conflict', 'the task changed while it was being cancelled; try again');
  }
  logger.info('task cancelled by the client', { taskId: task.id, from: task.state, upstream: task.upstream });
  await afterFinish(cancelled, d);
  return cancelled;
}

async function stopUpstreamJob(task: TaskRecord, d: CancelNeeds): Promise<void> {
  const provider = await taskUpstream(task, d);
  if (!provider.cancel)
    throw new ApiError(409, 'not_cancellable', 'this task is already rendering and its model cannot be stopped; it will finish');
  try {
    await provider.cancel(task.upstream_id ?? '');
  } catch (error) {
    logger.warn('upstream cancel failed', { taskId: task.id, upstream: task.upstream, reason: (error as Error).message });
    if (error instanceof UpstreamError && error.kind === 'rejected')
      throw new ApiError(409, 'not_cancellable', 'this task is already rendering and could not be stopped; it will finish');
    throw new ApiError(503, 'upstream_unavailable', 'the rendering could not be stopped just now; try again');
  }
}

function finished(task: TaskRecord): ApiError {
  const where = task.state === 'archiving' ? 'its video is being stored' : `it has ${task.state}`;
  return new ApiError(409, 'not_cancellable', `the task cannot be cancelled: ${where}`);
}
