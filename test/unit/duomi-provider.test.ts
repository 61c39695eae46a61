import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { UpstreamJob } from '../../lambdas/shared/providers/provider';
import { upstreamCaps } from '../../lambdas/shared/contracts/upstream';
import { DuomiProvider, duomiBody } from '../../lambdas/shared/providers/duomi';
import { UpstreamError } from '../../lambdas/shared/providers/provider';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A stand-in for the duomi API on loopback: each test says how it answers. */
let answer: (res: ServerResponse, seen: Seen) => void;
const seen: Seen[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    seen.push(request);
    answer(res, request);
  });
});
let baseUrl = '';

const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

const provider = (timeoutMs = 2000) => new DuomiProvider({ baseUrl, apiKey: async () => 'sk-duomi-123', timeoutMs });

const body: UpstreamJob = {
  taskId: 'task_1',
  model: 'sora-2',
  prompt: 'The car moves forward at a high speed',
  aspectRatio: '16:9',
  duration: 15,
  imageUrls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
  characters: [],
  callbackUrl: 'https://api.example.com/callbacks/upstream/task_1?token=abc',
};

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamError);
    return error as UpstreamError;
  }
  throw new Error('expected an UpstreamError');
}

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen.length = 0;
  answer = reply(500, { error: 'no answer set' });
});

describe('DuomiProvider.submit', () => {
  it('posts the body to /v1/videos/generations with the bare key as Authorization', async () => {
    answer = reply(200, { id: 'up-123' });
    await provider().submit(body);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/v1/videos/generations');
    expect(seen[0]!.headers.authorization).toBe('sk-duomi-123');
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0]!.body)).toEqual(duomiBody(body));
  });

  it('answers the upstream id of an accepted task', async () => {
    answer = reply(200, { id: 'up-123' });
    expect(await provider().submit(body)).toEqual({ upstreamId: 'up-123' });
  });

  it('answers a numeric upstream id as text', async () => {
    answer = reply(200, { id: 98765 });
    expect(await provider().submit(body)).toEqual({ upstreamId: '98765' });
  });

  it.each([{ ok: true }, { id: null }, { id: '' }, 'accepted'])('takes a 200 without a usable id (%j) as the upstream being unwell', async (answerBody) => {
    answer = reply(200, answerBody);
    const error = await failure(provider().submit(body));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toBe('upstream accepted the task but sent no id');
  });

  it('takes a 400 as a refusal for good, with the upstream’s reason', async () => {
    answer = reply(400, { error: { message: 'prompt violates content policy' } });
    const error = await failure(provider().submit(body));
    expect(error.kind).toBe('rejected');
    expect(error.status).toBe(400);
    expect(error.message).toContain('prompt violates content policy');
  });

  it('finds the reason in the other shapes upstreams use', async () => {
    answer = reply(422, { message: 'image_urls[0] cannot be downloaded' });
    expect((await failure(provider().submit(body))).message).toContain('image_urls[0] cannot be downloaded');
    answer = reply(400, { error: 'duration not supported' });
    expect((await failure(provider().submit(body))).message).toContain('duration not supported');
    answer = reply(400, 'bad request: model');
    expect((await failure(provider().submit(body))).message).toContain('bad request: model');
  });

  it('keeps the upstream’s error code', async () => {
    answer = reply(400, { error: { message: 'prompt violates content policy', code: 'content_policy' } });
    expect((await failure(provider().submit(body))).code).toBe('content_policy');
  });

  it('takes a 429 as unavailable, with its Retry-After', async () => {
    answer = reply(429, { error: { message: 'slow down' } }, { 'retry-after': '42' });
    const error = await failure(provider().submit(body));
    expect(error).toMatchObject({ kind: 'unavailable', status: 429, retryAfterSeconds: 42 });
  });

  it('ignores a Retry-After that is not a number of seconds', async () => {
    answer = reply(429, {}, { 'retry-after': 'Wed, 21 Oct 2099 07:28:00 GMT' });
    const error = await failure(provider().submit(body));
    expect(error.kind).toBe('unavailable');
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it.each([500, 503])('takes its own %i as unavailable', async (status) => {
    answer = reply(status, { error: { message: 'busy' } });
    const error = await failure(provider().submit(body));
    expect(error).toMatchObject({ kind: 'unavailable', status });
  });

  it.each([502, 504, 524])('takes a proxy’s %i as ambiguous: the job may exist behind it', async (status) => {
    answer = reply(status, '<html>Bad Gateway</html>');
    const error = await failure(provider().submit(body));
    expect(error).toMatchObject({ kind: 'ambiguous', status });
    expect(error.message).toBe(`upstream answered ${status}: <html>Bad Gateway</html>`);
  });

  it.each([401, 403])('takes a %i as unavailable: it is our key, the operator’s problem, not the client’s', async (status) => {
    answer = reply(status, { error: { message: 'invalid api key' } });
    const error = await failure(provider().submit(body));
    expect(error).toMatchObject({ kind: 'unavailable', status });
  });

  it('takes silence past the timeout as ambiguous: the request was sent', async () => {
    answer = () => undefined; // never answers
    const started = Date.now();
    const error = await failure(provider(150).submit(body));
    expect(error.kind).toBe('ambiguous');
    expect(error.message).toBe('upstream did not answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('takes a refused connection as unavailable', async () => {
    const nowhere = new DuomiProvider({ baseUrl: 'http://127.0.0.1:1', apiKey: async () => 'k', timeoutMs: 1000 });
    const error = await failure(nowhere.submit(body));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/^upstream unreachable/);
  });
});

describe('DuomiProvider.remix', () => {
  it('posts the new prompt with the original job\'s settings to /v1/videos/{id}/remix, without its images, and answers the new id', async () => {
    answer = reply(200, { id: 'up-remix-1' });
    expect(await provider().remix('up 123', { ...body, prompt: 'the car, in the rain' })).toEqual({ upstreamId: 'up-remix-1' });
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/v1/videos/up%20123/remix');
    expect(seen[0]!.headers.authorization).toBe('sk-duomi-123');
    expect(JSON.parse(seen[0]!.body)).toEqual({
      model: 'sora-2',
      prompt: 'the car, in the rain',
      aspect_ratio: '16:9',
      duration: 15,
      callback_url: body.callbackUrl,
    });
  });

  it('reads the answer as a submit\'s: a 400 is a refusal with the reason, a 503 unavailable', async () => {
    answer = reply(400, { error: { message: 'task up-1 cannot be remixed: it is running' } });
    const refused = await failure(provider().remix('up-1', body));
    expect(refused.kind).toBe('rejected');
    expect(refused.message).toContain('cannot be remixed');
    answer = reply(503, { error: { message: 'busy' } });
    expect((await failure(provider().remix('up-1', body))).kind).toBe('unavailable');
  });
});

describe('DuomiProvider.status', () => {
  it('asks GET /v1/videos/tasks/{id} with the key', async () => {
    answer = reply(200, { id: 'up/1', state: 'running', progress: 10 });
    await provider().status('up/1');
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/videos/tasks/up%2F1' });
    expect(seen[0]!.headers.authorization).toBe('sk-duomi-123');
  });

  it.each([
    ['pending', 'pending'],
    ['running', 'running'],
    ['succeeded', 'succeeded'],
    ['error', 'failed'],
    ['SUCCEEDED', 'succeeded'],
    ['queued_for_gpu', 'running'],
    ['warming_up', 'running'],
  ])('reads the state %j as phase %j', async (state, phase) => {
    answer = reply(200, { id: 'up-1', state, progress: 50, data: { videos: [] }, message: '' });
    const status = await provider().status('up-1');
    expect(status.phase).toBe(phase);
    expect(status.state).toBe(state);
  });

  it('extracts the video URL and the upstream id of a finished task', async () => {
    answer = reply(200, {
      id: 'up-1',
      state: 'succeeded',
      progress: 100,
      data: { videos: [{ url: 'https://cdn.duomi.example/v/up-1.mp4', cover: 'x.jpg' }] },
      message: '',
    });
    expect(await provider().status('up-1')).toEqual({
      upstreamId: 'up-1',
      phase: 'succeeded',
      state: 'succeeded',
      progress: 100,
      videoUrl: 'https://cdn.duomi.example/v/up-1.mp4',
      message: '',
    });
  });

  it('keeps the message of a failed task', async () => {
    answer = reply(200, { id: 'up-1', state: 'error', progress: 0, data: null, message: 'content moderation' });
    expect(await provider().status('up-1')).toMatchObject({ phase: 'failed', message: 'content moderation', videoUrl: undefined });
  });

  it.each([500, 400, 404])('takes an HTTP %i as unavailable, whatever it is', async (status) => {
    answer = reply(status, { error: { message: 'nope' } });
    expect((await failure(provider().status('up-1'))).kind).toBe('unavailable');
  });
});

describe('what an upstream says, of any size, is capped as it is parsed', () => {
  const huge = {
    id: 'u'.repeat(10_000),
    state: 'succeeded',
    progress: 100,
    data: { videos: [{ url: `https://cdn.duomi.example/${'v'.repeat(500 * 1024)}.mp4` }] },
    message: 'm'.repeat(500_000),
  };

  it('in a callback: message, video URL, id and state word', () => {
    const status = provider().parseStatus(huge);
    expect(status).toMatchObject({ phase: 'succeeded', upstreamId: 'u'.repeat(upstreamCaps.id), message: 'm'.repeat(upstreamCaps.message) });
    expect(status.videoUrl).toBe(huge.data.videos[0]!.url.slice(0, upstreamCaps.url));
    expect(provider().parseStatus({ state: 'w'.repeat(100_000) }).state).toBe('w'.repeat(upstreamCaps.state));
  });

  it('in a poll answer of 1 MB', async () => {
    answer = reply(200, huge);
    const status = await provider().status('up-1');
    expect(status.phase).toBe('succeeded');
    expect(status.videoUrl).toHaveLength(upstreamCaps.url);
    expect(status.message).toHaveLength(upstreamCaps.message);
  });

  it('in the id of an accepted submit', async () => {
    answer = reply(200, { id: 'x'.repeat(50_000) });
    expect(await provider().submit(body)).toEqual({ upstreamId: 'x'.repeat(upstreamCaps.id) });
  });
});

describe('DuomiProvider.parseCallback', () => {
  const parse = (b: unknown) => provider().parseStatus(b);

  it.each([
    [150, 100],
    [-5, 0],
    [42.6, 43],
    ['37', 37],
    ['lots', 0],
    [null, 0],
    [undefined, 0],
  ])('clamps the progress %j to %j', (progress, expected) => {
    expect(parse({ id: 'up-1', state: 'running', progress }).progress).toBe(expected);
  });

  it('takes an empty video URL as none', () => {
    expect(parse({ state: 'succeeded', data: { videos: [{ url: '' }] } }).videoUrl).toBeUndefined();
  });

  it('takes a missing message as empty', () => {
    expect(parse({ state: 'running', message: null }).message).toBe('');
  });

  it('accepts a numeric id', () => {
    expect(parse({ id: 7, state: 'pending' }).upstreamId).toBe('7');
  });

  it.each([{}, { id: 'up-1', progress: 10 }, null, 'succeeded', { state: 3 }])('refuses the body %j, which has no state', (b) => {
    expect(() => parse(b)).toThrow(UpstreamError);
  });
});
