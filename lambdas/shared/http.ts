import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type * as z from 'zod/mini';
import { MAX_BODY_BYTES, describeIssue, type ErrorBody, type ErrorCode, type ErrorType } from './contracts/api';
import { logger } from './logger';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

/** An error the client is meant to see, with the API's status, code and offending field. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | (string & {}),
    message: string,
    readonly param?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** OpenAI's class for the status: what its SDK's clients switch on, the same in both dialects. */
  get type(): ErrorType {
    if (this.status === 401) return 'authentication_error';
    if (this.status === 429) return this.code === 'quota_exceeded' ? 'insufficient_quota' : 'rate_limit_error';
    if (this.status >= 500) return 'server_error';
    return 'invalid_request_error';
  }

  static invalid(message: string, param?: string) {
    return new ApiError(400, 'invalid_request', message, param);
  }

  static notFound(what = 'task') {
    return new ApiError(404, 'not_found', `no such ${what}`);
  }

  static fromZod(error: z.core.$ZodError) {
    const { message, param } = describeIssue(error);
    return new ApiError(400, 'invalid_request', message, param);
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

export function errorResult(error: ApiError): HttpResult {
  const body: ErrorBody = { error: { code: error.code, message: error.message, type: error.type } };
  if (error.param !== undefined) body.error.param = error.param;
  return json(error.status, body, error.headers);
}

/** Header lookup that ignores case (API Gateway lower-cases, other callers may not). */
export function header(event: HttpEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

export function rawBody(event: HttpEvent): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

/** The API's 413 for a body over a route's limit (the local adapter answers it too, for the routes that declare one). */
export const bodyTooLarge = (limit: number) => new ApiError(413, 'payload_too_large', `request body is over ${limit / 1024} KiB`);

/** The JSON body of a request, with the API's 413, 415 and 400 answers for the ways it can be wrong. */
export function parseJsonBody(event: HttpEvent): unknown {
  const body = rawBody(event);
  if (body.length > MAX_BODY_BYTES) throw bodyTooLarge(MAX_BODY_BYTES);
  const type = header(event, 'content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type.trim()))
    throw new ApiError(415, 'unsupported_media_type', 'send the request body as application/json');
  // JSON is UTF-8 (RFC 8259); a body declared in another charset would be misread, not refused.
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(type)?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset))
    throw new ApiError(415, 'unsupported_media_type', `send the request body as UTF-8 JSON, not ${charset.slice(0, 40) || 'an empty charset'}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw ApiError.invalid('request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw ApiError.invalid('request body is not valid JSON');
  }
}

/** Parse with a contract schema; a mismatch becomes the API's 400 naming the field. */
export function parseWith<S extends z.ZodMiniType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw ApiError.fromZod(result.error);
  return result.data;
}

/**
 * Any error as the API's JSON error. Errors the client is meant to see keep their status;
 * anything else is logged and becomes a bare 500.
 */
export function errorResponse(error: unknown, event: HttpEvent | undefined): HttpResult {
  if (error instanceof ApiError) return errorResult(error);
  logger.error('unhandled error', { error: error as Error, routeKey: event?.routeKey });
  return errorResult(new ApiError(500, 'internal_error', 'internal error'));
}
