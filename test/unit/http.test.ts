import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { seedCatalogModels } from '../../lambdas/shared/catalog';
import { submitBodySchema } from '../../lambdas/shared/contracts';
import { TIMEOUT_EARLY_MS, httpHandler } from '../../lambdas/shared/handler-kit';
import {
  ApiError,
  errorResult,
  header,
  json,
  parseJsonBody,
  parseWith,
  type HttpEvent,
  type HttpResult,
} from '../../lambdas/shared/http';
import { logger } from '../../lambdas/shared/logger';

function request(body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }, isBase64Encoded = false): HttpEvent {
  return {
    version: '2.0',
    routeKey: 'POST /v1/videos/generations',
    rawPath: '/v1/videos/generations',
    rawQueryString: '',
    headers,
    body,
    isBase64Encoded,
    requestContext: {
      accountId: '000000000000',
      apiId: 'unit',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'POST', path: '/v1/videos/generations', protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'unit' },
      requestId: 'req-1',
      routeKey: 'POST /v1/videos/generations',
      stage: '$default',
      time: '24/Nov/2025:11:00:00 +0000',
      timeEpoch: 0,
    },
  };
}

/** What the client would see had `parseJsonBody` run inside a handler. */
function answerTo(event: HttpEvent): { statusCode?: number; body: unknown } {
  try {
    parseJsonBody(event);
    return { statusCode: 200, body: undefined };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const answer = errorResult(error);
    return { statusCode: answer.statusCode, body: JSON.parse(answer.body!) };
  }
}

describe('parseJsonBody', () => {
  it('reads a JSON body', () => {
    expect(parseJsonBody(request('{"model":"sora-2"}'))).toEqual({ model: 'sora-2' });
  });

  it.each(['application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8', 'application/vnd.api+json'])(
    'accepts the content type %j',
    (type) => {
      expect(parseJsonBody(request('{"a":1}', { 'content-type': type }))).toEqual({ a: 1 });
    },
  );

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp', 'multipart/form-data; boundary=x'])(
    'answers 415 unsupported_media_type to %j',
    (type) => {
      expect(answerTo(request('{"a":1}', { 'content-type': type }))).toEqual({
        statusCode: 415,
        body: { error: { code: 'unsupported_media_type', type: 'invalid_request_error', message: 'send the request body as application/json' } },
      });
    },
  );

  it.each([
    ['application/json; charset=utf-16', 'utf-16'],
    ['application/json;charset=UTF-16LE', 'UTF-16LE'],
    ['application/json; charset="iso-8859-1"', 'iso-8859-1'],
    ['application/json; charset=windows-1252', 'windows-1252'],
  ])('answers 415 to a JSON body in another charset than UTF-8 (%j)', (type, charset) => {
    expect(answerTo(request('{"a":1}', { 'content-type': type }))).toEqual({
      statusCode: 415,
      body: { error: { code: 'unsupported_media_type', type: 'invalid_request_error', message: `send the request body as UTF-8 JSON, not ${charset}` } },
    });
  });

  it.each(['application/json; charset="utf-8"', 'application/json; charset=utf8', 'application/json; boundary=x; charset=UTF-8'])(
    'accepts UTF-8 however it is spelled (%j)',
    (type) => {
      expect(parseJsonBody(request('{"a":1}', { 'content-type': type }))).toEqual({ a: 1 });
    },
  );

  it('answers 415 when no content type is sent', () => {
    expect(answerTo(request('{"a":1}', {})).statusCode).toBe(415);
  });

  it('accepts a body of exactly 64 KiB', () => {
    const filler = 'x'.repeat(64 * 1024 - '{"p":""}'.length);
    expect(parseJsonBody(request(`{"p":"${filler}"}`))).toEqual({ p: filler });
  });

  it('answers 413 payload_too_large to a body over 64 KiB', () => {
    const filler = 'x'.repeat(64 * 1024);
    expect(answerTo(request(`{"p":"${filler}"}`))).toEqual({
      statusCode: 413,
      body: { error: { code: 'payload_too_large', type: 'invalid_request_error', message: 'request body is over 64 KiB' } },
    });
  });

  it('counts the size in bytes, not characters', () => {
    const filler = '视'.repeat(22 * 1024); // three bytes each in UTF-8: 66 KiB
    expect(answerTo(request(`{"p":"${filler}"}`)).statusCode).toBe(413);
  });

  it.each(['{"model": "sora-2"', "{'model': 'sora-2'}", '', 'sora-2'])('answers 400 invalid_request to the malformed body %j', (body) => {
    expect(answerTo(request(body))).toEqual({
      statusCode: 400,
      body: { error: { code: 'invalid_request', type: 'invalid_request_error', message: 'request body is not valid JSON' } },
    });
  });

  it('reads a base64-encoded body', () => {
    const encoded = Buffer.from('{"prompt":"唱歌"}', 'utf8').toString('base64');
    expect(parseJsonBody(request(encoded, { 'content-type': 'application/json' }, true))).toEqual({ prompt: '唱歌' });
  });

  it('measures a base64-encoded body by its decoded size', () => {
    const decoded = `{"p":"${'x'.repeat(60 * 1024)}"}`; // under 64 KiB decoded, over it in base64
    const encoded = Buffer.from(decoded).toString('base64');
    expect(encoded.length).toBeGreaterThan(64 * 1024);
    expect(parseJsonBody(request(encoded, { 'content-type': 'application/json' }, true))).toEqual({ p: 'x'.repeat(60 * 1024) });
  });

  it('answers 400 to a body that is not UTF-8', () => {
    const latin1 = Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]).toString('base64'); // {"p":"é"} in Latin-1
    expect(answerTo(request(latin1, { 'content-type': 'application/json' }, true))).toEqual({
      statusCode: 400,
      body: { error: { code: 'invalid_request', type: 'invalid_request_error', message: 'request body is not valid UTF-8' } },
    });
  });
});

describe('header', () => {
  const event = request('{}', { 'Content-Type': 'application/json', authorization: 'Bearer vtg_x', 'IDEMPOTENCY-KEY': 'k1' });

  it.each([
    ['content-type', 'application/json'],
    ['CONTENT-TYPE', 'application/json'],
    ['Authorization', 'Bearer vtg_x'],
    ['idempotency-key', 'k1'],
  ])('finds %s whatever its case', (name, value) => {
    expect(header(event, name)).toBe(value);
  });

  it('is undefined for a header not sent, or when there are no headers at all', () => {
    expect(header(event, 'x-missing')).toBeUndefined();
    expect(header({ ...event, headers: undefined as unknown as HttpEvent['headers'] }, 'authorization')).toBeUndefined();
  });

  it('lets parseJsonBody see a Content-Type sent in any case', () => {
    expect(parseJsonBody(request('{"a":1}', { 'CONTENT-TYPE': 'application/json' }))).toEqual({ a: 1 });
  });
});

describe('parseWith', () => {
  it('turns a contract mismatch into a 400 naming the field', () => {
    const error = (() => {
      try {
        parseWith(submitBodySchema(seedCatalogModels('duomi')), { model: 'sora-2', prompt: '   ' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, code: 'invalid_request', message: 'prompt must not be empty', param: 'prompt' });
  });
});

describe('an HTTP handler', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  const context = { functionName: 'unit', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 1000 } as unknown as Context;
  const failingWith = (error: unknown) =>
    httpHandler(async (): Promise<HttpResult> => {
      throw error;
    }, {});

  it('answers an ApiError with its status, JSON body and headers', async () => {
    const result = await failingWith(new ApiError(400, 'invalid_request', 'duration must be 10, 15 or 25', 'duration', { deprecation: 'true' }))(
      request('{}'),
      context,
    );
    expect(result.statusCode).toBe(400);
    expect(result.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', deprecation: 'true' });
    expect(JSON.parse(result.body!)).toEqual({
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'duration must be 10, 15 or 25', param: 'duration' },
    });
  });

  it('leaves param out when the error names no field', async () => {
    const result = await failingWith(ApiError.notFound())(request('{}'), context);
    expect(result.statusCode).toBe(404);
    expect(result.body).toBe('{"error":{"code":"not_found","message":"no such task","type":"invalid_request_error"}}');
  });

  it('turns an unknown error into a bare 500 with no stack or detail, and logs the cause', async () => {
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const secret = new Error('connect ECONNREFUSED 10.0.0.7:443 (table vtg-prod-tasks)');
    const result = await failingWith(secret)(request('{}'), context);
    expect(result.statusCode).toBe(500);
    expect(result.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8' });
    expect(result.body).toBe('{"error":{"code":"internal_error","message":"internal error","type":"server_error"}}');
    expect(result.body).not.toContain('ECONNREFUSED');
    expect(result.body).not.toContain('    at ');
    expect(logged).toHaveBeenCalledOnce();
    expect(logged.mock.calls[0]![1]).toMatchObject({ error: secret });
  });

  it.each([
    [400, 'invalid_request', 'invalid_request_error'],
    [401, 'unauthorized', 'authentication_error'],
    [404, 'not_found', 'invalid_request_error'],
    [409, 'conflict', 'invalid_request_error'],
    [413, 'payload_too_large', 'invalid_request_error'],
    [415, 'unsupported_media_type', 'invalid_request_error'],
    [429, 'rate_limited', 'rate_limit_error'],
    [429, 'concurrency_limit', 'rate_limit_error'],
    [429, 'quota_exceeded', 'insufficient_quota'],
    [502, 'upstream_error', 'server_error'],
    [503, 'upstream_unavailable', 'server_error'],
  ])('gives a %i %s the type %s, as OpenAI words it', (status, code, type) => {
    expect(JSON.parse(errorResult(new ApiError(status, code, 'x')).body!)).toEqual({ error: { code, message: 'x', type } });
  });

  it('turns a thrown non-Error into the same bare 500', async () => {
    vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const result = await failingWith('boom')(request('{}'), context);
    expect(result).toMatchObject({ statusCode: 500, body: '{"error":{"code":"internal_error","message":"internal error","type":"server_error"}}' });
  });

  it('leaves a successful answer alone', async () => {
    const ok = httpHandler(async () => json(200, { id: 'task_1' }), {});
    expect(await ok(request('{}'), context)).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"id":"task_1"}',
    });
  });

  it('hands the core its event and its collaborators', async () => {
    const deps = { store: 'the store' };
    const seen: unknown[] = [];
    const handler = httpHandler(async (event: HttpEvent, d: typeof deps) => {
      seen.push(event.body, d);
      return json(200, {});
    }, deps);
    await handler(request('{"a":1}'), context);
    expect(seen).toEqual(['{"a":1}', deps]);
  });

  it('logs under the invocation’s context, and clears its keys once it has answered, also after an error', async () => {
    const calls: string[] = [];
    vi.spyOn(logger, 'addContext').mockImplementation((c) => void calls.push(`context ${(c as { awsRequestId: string }).awsRequestId}`));
    vi.spyOn(logger, 'resetKeys').mockImplementation(() => void calls.push('reset'));
    vi.spyOn(logger, 'error').mockImplementation(() => void calls.push('error logged'));
    const handler = httpHandler(async () => {
      calls.push('work');
      return json(200, {});
    }, {});
    await handler(request('{}'), context);
    expect(calls).toEqual(['context req-1', 'work', 'reset']);
    calls.length = 0;
    await failingWith(new Error('boom'))(request('{}'), context);
    expect(calls).toEqual(['context req-1', 'error logged', 'reset']);
  });

  it('answers the JSON 500 just before the invocation runs out of time, and logs it', async () => {
    vi.useFakeTimers();
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const never = httpHandler(() => new Promise<HttpResult>(() => undefined), {});
    const answer = never(request('{}'), { ...context, getRemainingTimeInMillis: () => 200 } as Context);
    await vi.advanceTimersByTimeAsync(200 - TIMEOUT_EARLY_MS);
    expect(await answer).toMatchObject({ statusCode: 500, body: '{"error":{"code":"internal_error","message":"internal error","type":"server_error"}}' });
    expect((logged.mock.calls[0]![1] as { error: Error }).error.name).toBe('TimeoutError');
  });

  it('marks a create\'s 5xx, the early timeout\'s too, x-should-retry: false where told, still logging the cause; never a 4xx or another route', async () => {
    vi.useFakeTimers();
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const create = { ...request('{}'), routeKey: 'POST /v1/videos' };
    const noBlindRetry = (event: HttpEvent) => event.routeKey === 'POST /v1/videos';
    const failing = (error: unknown) =>
      httpHandler(async (): Promise<HttpResult> => {
        throw error;
      }, {}, { noBlindRetry });

    const never = httpHandler(() => new Promise<HttpResult>(() => undefined), {}, { noBlindRetry });
    const answer = never(create, { ...context, getRemainingTimeInMillis: () => 200 } as Context);
    await vi.advanceTimersByTimeAsync(200 - TIMEOUT_EARLY_MS);
    expect(await answer).toMatchObject({
      statusCode: 500,
      headers: { 'x-should-retry': 'false' },
      body: '{"error":{"code":"internal_error","message":"internal error","type":"server_error"}}',
    });
    expect((logged.mock.calls[0]![1] as { error: Error }).error.name).toBe('TimeoutError');

    const unknown = await failing(new Error('table throttled'))(create, context);
    expect(unknown).toMatchObject({ statusCode: 500, headers: { 'x-should-retry': 'false' } });
    expect(logged.mock.calls[1]![1]).toMatchObject({ error: new Error('table throttled') });
    const unavailable = await failing(new ApiError(503, 'upstream_unavailable', 'down', undefined, { 'retry-after': '5' }))(create, context);
    expect(unavailable).toMatchObject({ statusCode: 503, headers: { 'x-should-retry': 'false', 'retry-after': '5' } });

    const refused = await failing(new ApiError(429, 'rate_limited', 'slow down'))(create, context);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers).not.toHaveProperty('x-should-retry');
    const seed = await failing(new Error('table throttled'))(request('{}'), context);
    expect(seed.statusCode).toBe(500);
    expect(seed.headers).not.toHaveProperty('x-should-retry');
  });

  it('leaves no timer behind once the core has answered', async () => {
    vi.useFakeTimers();
    const quick = httpHandler(async () => json(200, {}), {});
    await quick(request('{}'), context);
    expect(vi.getTimerCount()).toBe(0);
  });
});
