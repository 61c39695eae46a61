import * as z from 'zod/mini';
import { errorBodySchema } from './contracts/api';
import { submitBodySchema, submitResponseSchema } from './contracts/submit';
import { taskListSchema, taskViewSchema } from './contracts/view';

const schema = (s: z.ZodMiniType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(s, { io, target: 'openapi-3.0', unrepresentable: 'any' });

const errors = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [String(s), { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
  );

const taskId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ok = (ref: string) => ({ description: 'ok', content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });

let document: object | undefined;

/** The API's OpenAPI document, generated from the contracts. */
export function openApiDocument(): object {
  document ??= {
    openapi: '3.0.3',
    info: { title: 'Video Task Gateway', version: '1.0.0' },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'Authorization' } },
      schemas: {
        SubmitRequest: schema(submitBodySchema, 'input'),
        SubmitResponse: schema(submitResponseSchema),
        Task: schema(taskViewSchema),
        TaskList: schema(taskListSchema),
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
      '/v1/videos/generations/{id}': {
        get: { summary: 'A task', parameters: [taskId], responses: { '200': ok('Task'), ...errors(401, 404) } },
      },
      '/v1/videos/tasks/{id}': {
        get: { summary: "A task (the seed provider's path)", parameters: [taskId], responses: { '200': ok('Task'), ...errors(401, 404) } },
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
  return document;
}
