import * as z from 'zod/mini';
import { errorBodySchema } from './contracts/api';
import { submitBodySchema, submitResponseSchema } from './contracts/submit';
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
        SubmitResponse: schema(submitResponseSchema),
        Task: schema(taskViewSchema),
        TaskList: schema(taskListSchema),
        ModelList: schema(modelListSchema),
        Usage: schema(usageReportSchema),
        Error: schema(errorBodySchema),
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
      },
      '/v1/videos/tasks/{id}': {
        get: { summary: "A task (the seed provider's path)", parameters: [taskId], responses: { '200': ok('Task'), ...errors(401, 404) } },
      },
      '/v1/videos/generations/{id}/cancel': {
        post: {
          summary: 'Cancel a task: at once while queued; while rendering, where its model can be stopped',
          parameters: [taskId],
          responses: { '200': ok('Task'), ...errors(401, 404, 409, 503) },
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
