import * as z from 'zod/mini';
import { lazySchema } from './lazy';

/**
 * What every request and answer of the HTTP API shares: the body size limit, the error
 * body with its codes, and how a failed parse is reported (message and offending field).
 */

export const MAX_BODY_BYTES = 64 * 1024;

/** An uploaded `input_reference` image (`POST /v1/videos`) is at most this big. */
export const MAX_INPUT_IMAGE_BYTES = 10 * 1024 * 1024;
/** The body limit of `POST /v1/videos`, its route's own: the image and room for the other fields. */
export const MAX_VIDEOS_BODY_BYTES = MAX_INPUT_IMAGE_BYTES + 64 * 1024;

export const errorCodes = [
  'invalid_request',
  'unauthorized',
  'not_found',
  'idempotency_conflict',
  'conflict',
  'not_cancellable',
  'video_not_ready',
  'remix_unsupported',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'concurrency_limit',
  'quota_exceeded',
  'upstream_rejected',
  'upstream_error',
  'upstream_unavailable',
  'internal_error',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** The class of an error in OpenAI's words, which its SDK and clients written against it read. */
export const errorTypes = ['invalid_request_error', 'authentication_error', 'rate_limit_error', 'insufficient_quota', 'server_error'] as const;
export type ErrorType = (typeof errorTypes)[number];

export const errorBodySchema = lazySchema(() =>
  z.object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      param: z.optional(z.string()),
      type: z.enum(errorTypes),
    }),
  }),
);
export type ErrorBody = z.infer<ReturnType<typeof errorBodySchema>>;

/** The first problem of a failed parse, as the API reports it: message and offending field. */
export function describeIssue(error: z.core.$ZodError): { message: string; param?: string } {
  const issue = error.issues[0];
  if (!issue) return { message: 'invalid request' };
  const param = formatPath(issue.path);
  return param ? { message: issue.message, param } : { message: issue.message };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}
