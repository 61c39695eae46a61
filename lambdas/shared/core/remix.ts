import { remixBodySchema, type RemixRequest, type SubmitRequest } from '../contracts/submit';
import type { TaskRecord } from '../contracts/task';
import type { ApiKeyRecord } from '../api-keys';
import { ApiError, json, parseJsonBody, parseWith, type HttpEvent, type HttpResult } from '../http';
import { logger } from '../logger';
import { taskUpstream } from './task-upstream';
import { createBody } from './openai';
import { videoObject } from './openai-view';
import { createTask, refusedAtOnce, type SubmitNeeds, type TaskExtras } from './submit';

/** `POST /v1/videos/generations/{id}/remix`: the seed dialect's remix; answers the new task's id, as a submit does. */
export async function remixTask(event: HttpEvent, d: SubmitNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const body = parseWith(remixBodySchema(), parseJsonBody(event));
  const task = refusedAtOnce(await remixOf(event, key, body, 'seed', d));
  return json(200, { id: task.id });
}

/** `POST /v1/videos/{id}/remix`: OpenAI's remix (`client.videos.remix(id, {prompt})`); answers the new Video. */
export async function remixVideo(event: HttpEvent, d: SubmitNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const { fields } = await createBody(event);
  const body = parseWith(remixBodySchema(), fields);
  return json(200, videoObject(refusedAtOnce(await remixOf(event, key, body, 'openai', d))));
}

/**
 * A new task whose video the upstream that made the original makes from it, with a new
 * prompt: the original's model, duration, ratio and size, on the original's route only (no
 * other upstream holds that video, so there is no failover). The original must be the
 * caller's, and finished with a video; its upstream's dialect must be able to remix.
 */
async function remixOf(event: HttpEvent, key: ApiKeyRecord, body: RemixRequest, dialect: 'seed' | 'openai', d: SubmitNeeds): Promise<TaskRecord> {
  const original = await d.store.getOwned(event.pathParameters?.id ?? '', key.key_hash);
  if (!original) throw ApiError.notFound();
  if (original.state !== 'succeeded' || original.upstream_id === undefined) throw notReady(original);
  const provider = await taskUpstream(original, d).catch(() => undefined);
  if (!provider?.remix) throw new ApiError(400, 'remix_unsupported', `model ${original.model} cannot remix videos`);
  const request: SubmitRequest = {
    model: original.model,
    prompt: body.prompt,
    aspect_ratio: original.aspect_ratio,
    duration: original.duration,
    image_urls: [],
    characters: [],
    callback_url: body.callback_url,
    usedDeprecatedFields: false,
  };
  const extras: TaskExtras = {
    dialect,
    ...(original.size !== undefined ? { size: original.size } : {}),
    remixed_from: original.id,
    remix_source_job: original.upstream_id,
    upstream: provider.name,
    upstream_model: original.upstream_model,
    ...(original.route !== undefined ? { route: original.route } : {}),
  };
  const task = await createTask(event, key, request, d, extras);
  logger.info('remix recorded', { taskId: task.id, remixedFrom: original.id, upstream: provider.name });
  return task;
}

function notReady(task: TaskRecord): ApiError {
  const where = task.state === 'failed' ? 'it failed' : 'it has not finished';
  return new ApiError(409, 'video_not_ready', `video ${task.id} cannot be remixed: ${where}; only a completed video can be`);
}
