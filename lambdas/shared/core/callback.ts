import { terminalStates, type Renditions, type TaskRecord } from '../contracts/task';
import { verifyCallbackToken } from '../callback-token';
import { ApiError, json, rawBody, type HttpEvent, type HttpResult } from '../http';
import { logger } from '../logger';
import { KindNotBundledError } from '../providers';
import { UpstreamError, type UpstreamStatus } from '../providers/provider';
import { ARCHIVE_LEASE_MS } from '../task-store';
import { clientMessage, upstreamIdentity } from '../white-label';
import type { Needs } from './deps';
import { afterFinish, nextCheck } from './finish';
import { taskUpstream } from './task-upstream';

type CallbackNeeds = Needs<'config' | 'store' | 'usage' | 'upstreams' | 'queues' | 'callbackSecret'>;

/** `POST /callbacks/upstream/{id}?token=…`: the upstream's word on a task, answered at once; the video is fetched later. */
export async function handleCallback(event: HttpEvent, d: CallbackNeeds): Promise<HttpResult> {
  const id = event.pathParameters?.id ?? '';
  const token = event.queryStringParameters?.token ?? '';
  if (!token || !verifyCallbackToken(await d.callbackSecret(), id, token))
    throw new ApiError(401, 'unauthorized', 'bad callback token');
  const text = rawBody(event).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw ApiError.invalid('callback body is not valid JSON');
  }
  const task = await d.store.get(id);
  if (!task) throw ApiError.notFound();
  const provider = await taskUpstream(task, d).catch((error: unknown) => {
    // The callback Lambda bundles only the kinds that call back: any other is not one of them.
    if (error instanceof KindNotBundledError) return undefined;
    throw error;
  });
  if (!provider?.callsBack) throw new ApiError(409, 'conflict', "this task's upstream does not call back; it is polled");
  let status: UpstreamStatus;
  try {
    status = await provider.parseCallback({ body, rawBody: text, headers: event.headers ?? {}, upstreamId: task.upstream_id });
  } catch (error) {
    if (error instanceof UpstreamError && error.kind !== 'rejected')
      throw new ApiError(503, 'upstream_unavailable', `the callback could not be confirmed with the upstream: ${error.message}`);
    throw ApiError.invalid((error as Error).message);
  }
  if (task.upstream_id && status.upstreamId && status.upstreamId !== task.upstream_id) {
    logger.warn('callback names another upstream task', { taskId: id, upstreamId: status.upstreamId, expected: task.upstream_id });
    throw new ApiError(409, 'conflict', 'callback is for another upstream task');
  }
  await applyUpstreamStatus(task, status, d);
  return json(200, { ok: true });
}

/**
 * Move a task on from what the upstream says (callback or poll). Every step is conditional,
 * so a repeated, late or out-of-order word changes nothing. The task as that step left it,
 * or undefined when it changed nothing.
 */
export async function applyUpstreamStatus(
  task: TaskRecord,
  status: UpstreamStatus,
  d: Omit<CallbackNeeds, 'upstreams' | 'callbackSecret'>,
): Promise<TaskRecord | undefined> {
  if (terminalStates.includes(task.state)) return undefined;
  const now = d.store.now();
  switch (status.phase) {
    case 'succeeded': {
      if (!status.videoUrl) {
        const failed = await d.store.markFailed(task, 'upstream_failed', 'the upstream reported success without a video');
        await afterFinish(failed, d);
        return failed;
      }
      const renditions = Object.fromEntries(
        [['thumbnail', status.thumbnailUrl], ['spritesheet', status.spritesheetUrl]].filter(([, url]) => url !== undefined),
      ) as Renditions;
      const moved = await d.store.startArchiving(task.id, status.videoUrl, status.upstreamId, now + ARCHIVE_LEASE_MS, status.cost, renditions);
      if (moved) {
        logger.info('task rendered, archiving', { taskId: task.id });
        await d.queues.archive({ taskId: task.id, attempt: 1 });
      }
      return moved;
    }
    case 'failed': {
      const said = status.message || `the upstream failed the task (state ${status.state})`;
      const message = clientMessage(said, upstreamIdentity(d.config.catalog.upstreams, task.upstream, task.upstream_model));
      logger.info('upstream failed task', { taskId: task.id, message });
      // Once the upstream has said "succeeded", the video is ours to archive: a later failure word changes nothing.
      const failed = await d.store.markFailed(task, 'upstream_failed', message, ['queued', 'submitted', 'in_progress']);
      await afterFinish(failed, d);
      return failed;
    }
    default:
      return d.store.recordProgress(task.id, status.progress, status.upstreamId, nextCheck(task, now, d.config.SILENT_AFTER_SECONDS));
  }
}
