import { contentQuerySchema, videoListQuerySchema } from '../contracts/openai';
import { listQuerySchema, usageQuerySchema } from '../contracts/query';
import type { RenditionVariant, TaskRecord } from '../contracts/task';
import { ApiError, json, parseWith, type HttpEvent, type HttpResult } from '../http';
import { publicModel, type CatalogModel } from '../catalog';
import { adminQuery, type AdminNeeds } from './admin';
import type { Needs } from './deps';
import { usageReport, type UsageNeeds } from './usage';
import { videoObject } from './openai-view';
import { taskView } from './view';

type QueryNeeds = Needs<'store' | 'keys' | 'videos' | 'usage'> & {
  admin?: Pick<AdminNeeds, 'config' | 'circuits'>;
  /** The operator's limits for keys without their own; none when absent. */
  defaultLimits?: UsageNeeds['defaultLimits'];
  /** The catalog clients may use: allowed values only, never an upstream. */
  models?: Record<string, CatalogModel>;
};

/** The read side of the API: one task, the caller's list, the video redirect, the models, usage. */
export async function queryTasks(event: HttpEvent, d: QueryNeeds): Promise<HttpResult> {
  if (event.routeKey?.startsWith('GET /admin/')) {
    if (!d.admin) throw new ApiError(404, 'not_found', 'no admin API here');
    return adminQuery(event, { ...d, ...d.admin });
  }
  switch (event.routeKey) {
    case 'GET /v1/models':
      await d.keys.authenticate(event);
      return json(200, { object: 'list', data: Object.values(d.models ?? {}).map(publicModel) });
    case 'GET /v1/videos/generations':
      return listTasks(event, d);
    case 'GET /v1/usage': {
      const key = await d.keys.authenticate(event);
      const q = parseWith(usageQuerySchema(), event.queryStringParameters ?? {});
      return json(200, await usageReport(key, q, { usage: d.usage, defaultLimits: d.defaultLimits ?? {}, now: () => d.store.now() }));
    }
    case 'GET /v1/videos/generations/{id}':
    case 'GET /v1/videos/tasks/{id}':
      return json(200, await taskView(await ownedTask(event, d), d.videos));
    case 'GET /v1/videos/generations/{id}/content':
      return contentRedirect(event, d);
    case 'GET /v1/videos':
      return listVideos(event, d);
    case 'GET /v1/videos/{id}': {
      const task = await ownedTask(event, d);
      const open = task.state !== 'succeeded' && task.state !== 'failed';
      return json(200, videoObject(task), open ? { 'openai-poll-after-ms': String(POLL_AFTER_MS) } : {});
    }
    case 'GET /v1/videos/{id}/content': {
      const { variant } = parseWith(contentQuerySchema(), event.queryStringParameters ?? {});
      return variant === 'video' ? contentRedirect(event, d) : renditionRedirect(event, variant, d);
    }
    default:
      throw new ApiError(404, 'not_found', `no route for ${event.requestContext?.http?.method ?? ''} ${event.rawPath ?? ''}`.trim());
  }
}

async function ownedTask(event: HttpEvent, d: QueryNeeds): Promise<TaskRecord> {
  const key = await d.keys.authenticate(event);
  const id = event.pathParameters?.id ?? '';
  const task = await d.store.getOwned(id, key.key_hash);
  if (!task) throw ApiError.notFound();
  return task;
}

async function listTasks(event: HttpEvent, d: QueryNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const { limit, after } = parseWith(listQuerySchema(), event.queryStringParameters ?? {});
  const { tasks, hasMore } = await d.store.listByOwner(key.key_hash, limit, after);
  const data = await Promise.all(tasks.map((t) => taskView(t, d.videos)));
  return json(200, { object: 'list', data, has_more: hasMore, next_cursor: hasMore ? (tasks.at(-1)?.id ?? null) : null });
}

/** How soon an OpenAI client should ask again about an unfinished video. */
const POLL_AFTER_MS = 2000;

async function listVideos(event: HttpEvent, d: QueryNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const { limit, after, order } = parseWith(videoListQuerySchema(), event.queryStringParameters ?? {});
  const { tasks, hasMore } = await d.store.listByOwner(key.key_hash, limit, after, order);
  const data = tasks.map(videoObject);
  return json(200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
}

async function contentRedirect(event: HttpEvent, d: QueryNeeds): Promise<HttpResult> {
  const task = await ownedTask(event, d);
  if (task.state !== 'succeeded' || !task.video_key)
    throw new ApiError(404, 'not_found', `the video of task ${task.id} is not ready (status ${task.state})`);
  return redirectTo(task.video_key, d);
}

/** A thumbnail or spritesheet: stored when the upstream that made the video supplied one (OpenAI-compatible upstreams do). */
async function renditionRedirect(event: HttpEvent, variant: RenditionVariant, d: QueryNeeds): Promise<HttpResult> {
  const task = await ownedTask(event, d);
  if (task.state !== 'succeeded') throw new ApiError(404, 'not_found', `the video of task ${task.id} is not ready (status ${task.state})`);
  const key = task.renditions?.[variant];
  if (!key) throw new ApiError(404, 'not_found', `no ${variant} was supplied with this video; variant=video is always served`, 'variant');
  return redirectTo(key, d);
}

async function redirectTo(key: string, d: QueryNeeds): Promise<HttpResult> {
  const { url } = await d.videos.presign(key);
  return { statusCode: 302, headers: { location: url, 'cache-control': 'no-store' }, body: '' };
}
