import * as z from 'zod/mini';
import { errorBodySchema } from './contracts/api';
import { defaultSizes, videoDeletedSchema, videoListSchema, videoObjectSchema } from './contracts/openai';
import { MAX_PROMPT_CHARS, remixBodySchema, submitBodySchema, submitResponseSchema } from './contracts/submit';
import { modelListSchema, taskListSchema, taskViewSchema, usageReportSchema } from './contracts/view';
import type { Catalog } from './catalog';

const schema = (s: z.ZodMiniType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(s, { io, target: 'openapi-3.0', unrepresentable: 'any' });

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [String(s), { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
  );

const taskId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ok = (ref: string) => ({ description: 'ok', content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });

/**
 * The submit body as the catalog shapes it: the model ids, and the durations and ratios
 * some model takes (which model takes which is in `GET /v1/models`).
 */
function submitRequestSchema(models: Catalog['models']) {
  const json = schema(submitBodySchema(models), 'input') as { properties: Record<string, object> };
  const all = Object.values(models);
  const union = <T>(pick: (m: (typeof all)[number]) => T[]) => [...new Set(all.flatMap(pick))];
  const durations = union((m) => m.durations).sort((a, b) => a - b);
  json.properties.model = { type: 'string', enum: Object.keys(models) };
  json.properties.aspect_ratio = { type: 'string', enum: union((m) => m.aspectRatios), description: "default: the model's own" };
  json.properties.duration = { type: 'integer', enum: durations, description: "seconds; default: the model's own" };
  return json;
}

/** The OpenAI create's fields: the catalog's models, sizes as WxH of their ratios, seconds as strings. */
function videoCreateSchema(models: Catalog['models']) {
  const all = Object.values(models);
  const seconds = [...new Set(all.flatMap((m) => m.durations))].sort((a, b) => a - b).map(String);
  const sizes = [...new Set(all.flatMap((m) => m.aspectRatios.map((r) => defaultSizes[r])))];
  return {
    type: 'object',
    required: ['model', 'prompt'],
    properties: {
      model: { type: 'string', enum: Object.keys(models) },
      prompt: { type: 'string', minLength: 1, maxLength: MAX_PROMPT_CHARS },
      seconds: { type: 'string', enum: seconds, description: "default: the model's own" },
      size: { type: 'string', pattern: '^\\d+x\\d+$', example: sizes[0], description: `WxH in one of the model's aspect ratios, e.g. ${sizes.join(', ')}` },
      input_reference: { type: 'string', format: 'binary', description: 'a PNG, JPEG or WebP image up to 10 MiB (multipart), or {image_url} (JSON)' },
      'input_reference[image_url]': { type: 'string', format: 'uri' },
      callback_url: { type: 'string', format: 'uri', description: "receives the video.completed / video.failed event; without it, the key's default webhook URL does, if it has one" },
    },
  };
}

/** A remix, in either dialect: the original's model, duration and size, its route only; 409 until the original has its video. */
const remixOperation = (summary: string, answer: string) => ({
  summary,
  description: "Models whose upstream cannot remix answer 400 remix_unsupported; an original that is not completed, 409 video_not_ready.",
  parameters: [taskId, { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
  requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/RemixRequest' } } } },
  responses: { '200': ok(answer), ...errors(400, 401, 404, 409, 413, 415, 429, 502, 503) },
});

const documents = new WeakMap<Catalog['models'], object>();

/** The API's OpenAPI document, generated from the contracts and the catalog. */
export function openApiDocument(models: Catalog['models']): object {
  const cached = documents.get(models);
  if (cached) return cached;
  const document = {
    openapi: '3.0.3',
    info: { title: 'Video Task Gateway', version: '1.0.0' },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'Authorization' } },
      schemas: {
        SubmitRequest: submitRequestSchema(models),
        SubmitResponse: schema(submitResponseSchema()),
        Task: schema(taskViewSchema()),
        TaskList: schema(taskListSchema()),
        ModelList: schema(modelListSchema()),
        Usage: schema(usageReportSchema()),
        Error: schema(errorBodySchema()),
        Video: schema(videoObjectSchema()),
        VideoList: schema(videoListSchema()),
        VideoDeleted: schema(videoDeletedSchema()),
        VideoCreateRequest: videoCreateSchema(models),
        RemixRequest: schema(remixBodySchema(), 'input'),
      },
    },
    security: [{ apiKey: [] }],
    paths: {
      '/v1/videos/generations': {
        post: {
          summary: 'Create a video generation task',
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/SubmitRequest' } } } },
          responses: { '200': ok('SubmitResponse'), ...errors(400, 401, 409, 413, 415, 429, 502, 503) },
        },
        get: {
          summary: "List the caller's tasks, newest first",
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'after', in: 'query', schema: { type: 'string' }, description: 'next_cursor of the previous page' },
          ],
          responses: { '200': ok('TaskList'), ...errors(400, 401) },
        },
      },
      '/v1/models': {
        get: { summary: 'The models this gateway serves, and what each takes', responses: { '200': ok('ModelList'), ...errors(401) } },
      },
      '/v1/usage': {
        get: {
          summary: "The caller's usage per UTC day or model, from aggregates kept as tasks end; its limits and what is in use",
          parameters: [
            { name: 'start', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds; default the start of the current UTC month' },
            { name: 'end', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds; default now' },
            { name: 'group_by', in: 'query', schema: { type: 'string', enum: ['day', 'model'], default: 'day' } },
          ],
          responses: { '200': ok('Usage'), ...errors(400, 401) },
        },
      },
      '/v1/videos/generations/{id}': {
        get: { summary: 'A task', parameters: [taskId], responses: { '200': ok('Task'), ...errors(401, 404) } },
        delete: {
          summary: 'Delete a task: cancelled first if unfinished, then its stored video and record removed',
          parameters: [taskId],
          responses: { '200': ok('VideoDeleted'), ...errors(401, 404, 409, 503) },
        },
      },
      '/v1/videos/tasks/{id}': {
        get: { summary: "A task (the seed provider's path)", parameters: [taskId], responses: { '200': ok('Task'), ...errors(401, 404) } },
      },
      '/v1/videos/generations/{id}/cancel': {
        post: {
          summary: 'Cancel a task: at once while queued; while rendering, where its model can be stopped (otherwise, and once ended, 409 not_cancellable)',
          parameters: [taskId],
          responses: { '200': ok('Task'), ...errors(401, 404, 409, 503) },
        },
      },
      '/v1/videos/generations/{id}/remix': {
        post: remixOperation('A new task from a succeeded one and a new prompt, made by the upstream that made the original', 'SubmitResponse'),
      },
      '/v1/videos/{id}/remix': {
        post: remixOperation('A new video from a completed one and a new prompt (remixed_from_video_id names the original)', 'Video'),
      },
      '/v1/videos': {
        post: {
          summary: "Create a video (OpenAI's Videos API, as the official SDK sends it)",
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': { schema: { $ref: '#/components/schemas/VideoCreateRequest' } },
              'application/json': { schema: { $ref: '#/components/schemas/VideoCreateRequest' } },
            },
          },
          responses: { '200': ok('Video'), ...errors(400, 401, 409, 413, 415, 429, 502, 503) },
        },
        get: {
          summary: "List the caller's videos",
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'after', in: 'query', schema: { type: 'string' }, description: 'last_id of the previous page' },
            { name: 'order', in: 'query', schema: { type: 'string', enum: ['asc', 'desc'], default: 'desc' } },
          ],
          responses: { '200': ok('VideoList'), ...errors(400, 401) },
        },
      },
      '/v1/videos/{id}': {
        get: {
          summary: 'A video (any task, whichever dialect made it); unfinished ones carry openai-poll-after-ms',
          parameters: [taskId],
          responses: { '200': ok('Video'), ...errors(401, 404) },
        },
        delete: {
          summary: 'Delete a video: cancelled first if unfinished, then its stored video and record removed',
          parameters: [taskId],
          responses: { '200': ok('VideoDeleted'), ...errors(401, 404, 409, 503) },
        },
      },
      '/v1/videos/{id}/content': {
        get: {
          summary: 'Redirect to a fresh presigned URL of the video, or of its thumbnail or spritesheet when the upstream supplied one (404 otherwise)',
          parameters: [taskId, { name: 'variant', in: 'query', schema: { type: 'string', enum: ['video', 'thumbnail', 'spritesheet'], default: 'video' } }],
          responses: { '302': { description: 'redirect to the video' }, ...errors(400, 401, 404) },
        },
      },
      '/v1/videos/generations/{id}/content': {
        get: {
          summary: 'Redirect to a fresh presigned URL of the video',
          parameters: [taskId],
          responses: { '302': { description: 'redirect to the video' }, ...errors(401, 404) },
        },
      },
    },
  };
  documents.set(models, document);
  return document;
}
