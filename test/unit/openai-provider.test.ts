import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { localPolicy } from '../../lambdas/shared/outbound';
import { OpenAIProvider } from '../../lambdas/shared/providers/openai';
import { videoHeaders } from '../../lambdas/shared/providers/upstream-keys';
import { UpstreamError, type UpstreamJob, type UpstreamProvider } from '../../lambdas/shared/providers/provider';

interface Part {
  name: string;
  value?: string;
  filename?: string;
  contentType?: string;
  bytes?: Buffer;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  parts: Part[];
}

/** Reads a multipart body as its parts, in order. */
function parts(req: IncomingMessage, raw: Buffer): Promise<Part[]> {
  return new Promise((resolve, reject) => {
    const found: Part[] = [];
    const parser = busboy({ headers: req.headers });
    parser.on('field', (name, value) => found.push({ name, value }));
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => found.push({ name, filename: info.filename, contentType: info.mimeType, bytes: Buffer.concat(chunks) }));
    });
    parser.on('error', reject);
    parser.on('close', () => resolve(found));
    parser.end(raw);
  });
}

/** A stand-in for a reseller's `/v1` on loopback (and the client's image host): each test says how it answers. */
let answer: (res: ServerResponse, seen: Seen) => void;
let image: (res: ServerResponse) => void;
const seen: Seen[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', async () => {
    if (req.url?.startsWith('/images/')) return image(res);
    const raw = Buffer.concat(chunks);
    const multipart = (req.headers['content-type'] ?? '').startsWith('multipart/form-data');
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw.toString('utf8'), parts: multipart ? await parts(req, raw) : [] };
    seen.push(request);
    answer(res, request);
  });
});
let origin = '';
let baseUrl = '';

const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

const provider = (timeoutMs = 2000, imagePolicy = localPolicy) =>
  new OpenAIProvider({ name: 'reseller-a', baseUrl, apiKey: async () => 'sk-reseller-123', timeoutMs, imagePolicy });

const job = (extra: Partial<UpstreamJob> = {}): UpstreamJob => ({
  taskId: 'task_1',
  model: 'doubao-seedance-2-0-pro',
  prompt: 'The car moves forward at a high speed',
  aspectRatio: '16:9',
  duration: 5,
  imageUrls: [],
  characters: [],
  callbackUrl: 'https://api.example.com/callbacks/upstream/task_1?token=abc',
  ...extra,
});

const video = (fields: Record<string, unknown> = {}) => ({
  id: 'video_123',
  object: 'video',
  model: 'doubao-seedance-2-0-pro',
  status: 'queued',
  progress: 0,
  created_at: Math.floor(Date.now() / 1000),
  completed_at: null,
  error: null,
  prompt: 'The car moves forward at a high speed',
  seconds: '5',
  size: '1280x720',
  ...fields,
});

const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('rest of a tiny png')]);

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
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  baseUrl = `${origin}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen.length = 0;
  answer = reply(500, { error: { message: 'no answer set' } });
  image = (res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(png);
  };
});

describe('OpenAIProvider.submit: the multipart body', () => {
  it('posts prompt, model, seconds as text and size to {baseUrl}/videos, with the key as a Bearer token', async () => {
    answer = reply(200, video());
    await provider().submit(job());
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/videos' });
    expect(seen[0]!.headers.authorization).toBe('Bearer sk-reseller-123');
    expect(seen[0]!.headers['content-type']).toMatch(/^multipart\/form-data; boundary=\S+$/);
    expect(seen[0]!.parts).toEqual([
      { name: 'model', value: 'doubao-seedance-2-0-pro' },
      { name: 'prompt', value: 'The car moves forward at a high speed' },
      { name: 'seconds', value: '5' },
      { name: 'size', value: '1280x720' },
    ]);
  });

  it.each([
    ['16:9', '1280x720'],
    ['9:16', '720x1280'],
    ['1:1', '960x960'],
  ])('sends the default size of %s when the route names none: %s', async (aspectRatio, size) => {
    answer = reply(200, video());
    await provider().submit(job({ aspectRatio }));
    expect(seen[0]!.parts.find((p) => p.name === 'size')?.value).toBe(size);
  });

  it('sends the route’s size when it names one', async () => {
    answer = reply(200, video());
    await provider().submit(job({ aspectRatio: '9:16', size: '1080x1920' }));
    expect(seen[0]!.parts.find((p) => p.name === 'size')?.value).toBe('1080x1920');
  });

  it('keeps a prompt with line breaks, quotes and non-ASCII text intact', async () => {
    answer = reply(200, video());
    const prompt = 'Line one\r\nline "two" — 猫が走る\n--not-a-boundary';
    await provider().submit(job({ prompt }));
    expect(seen[0]!.parts.find((p) => p.name === 'prompt')?.value).toBe(prompt);
  });

  it('fetches image_urls[0] and sends it as the input_reference file part', async () => {
    answer = reply(200, video());
    await provider().submit(job({ imageUrls: [`${origin}/images/first.png`, `${origin}/images/second.png`] }));
    const files = seen[0]!.parts.filter((p) => p.bytes !== undefined);
    expect(files).toEqual([{ name: 'input_reference', filename: 'reference.png', contentType: 'image/png', bytes: png }]);
  });

  it('names the type of a JPEG or WebP reference by its bytes, whatever its host says', async () => {
    answer = reply(200, video());
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    image = (res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(jpeg);
    await provider().submit(job({ imageUrls: [`${origin}/images/x`] }));
    expect(seen[0]!.parts.at(-1)).toMatchObject({ filename: 'reference.jpg', contentType: 'image/jpeg', bytes: jpeg });
    seen.length = 0;
    const webp = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 0, 0, 0]), Buffer.from('WEBPVP8 ')]);
    image = (res) => res.writeHead(200).end(webp);
    await provider().submit(job({ imageUrls: [`${origin}/images/y`] }));
    expect(seen[0]!.parts.at(-1)).toMatchObject({ filename: 'reference.webp', contentType: 'image/webp' });
  });

  it('refuses a reference that is not an image, without calling the upstream', async () => {
    image = (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>');
    const error = await failure(provider().submit(job({ imageUrls: [`${origin}/images/page`] })));
    expect(error).toMatchObject({ kind: 'rejected', message: 'image_urls[0] is not a PNG, JPEG or WebP image' });
    expect(seen).toHaveLength(0);
  });

  it('refuses a reference its host says is missing; an image host in trouble is only unavailable', async () => {
    image = (res) => res.writeHead(404).end();
    expect(await failure(provider().submit(job({ imageUrls: [`${origin}/images/gone`] })))).toMatchObject({
      kind: 'rejected',
      message: 'image_urls[0] could not be fetched: its host answered 404',
    });
    image = (res) => res.writeHead(503).end();
    expect((await failure(provider().submit(job({ imageUrls: [`${origin}/images/busy`] })))).kind).toBe('unavailable');
    expect(seen).toHaveLength(0);
  });

  it('fetches the reference under the client URL policy: no private address outside local mode', async () => {
    const cloud = new OpenAIProvider({ baseUrl, apiKey: async () => 'k', timeoutMs: 1000 });
    const error = await failure(cloud.submit(job({ imageUrls: [`${origin}/images/first.png`] })));
    expect(error.kind).toBe('rejected');
    expect(error.message).toMatch(/^image_urls\[0\] could not be fetched: refused URL/);
    expect(seen).toHaveLength(0);
  });
});

describe('OpenAIProvider.submit: the answers', () => {
  it('answers the id of the job made', async () => {
    answer = reply(200, video({ id: 'video_abc' }));
    expect(await provider().submit(job())).toEqual({ upstreamId: 'video_abc' });
  });

  it('takes the task_id some relays send when there is no id', async () => {
    answer = reply(200, { task_id: 'task_9', status: 'submitted' });
    expect(await provider().submit(job())).toEqual({ upstreamId: 'task_9' });
  });

  it('takes a 2xx without an id as ambiguous: a job may have been made', async () => {
    answer = reply(200, { ok: true });
    expect(await failure(provider().submit(job()))).toMatchObject({ kind: 'ambiguous', message: 'upstream accepted the job but sent no id' });
  });

  it.each([
    [400, { message: 'Your request was blocked by our moderation system.', type: 'invalid_request_error', code: 'moderation_blocked' }],
    [400, { message: "Invalid value: '7'. Supported values are: '5' and '10'.", type: 'invalid_request_error', param: 'seconds', code: 'invalid_value' }],
    [422, { message: 'the image could not be decoded', type: 'invalid_request_error', code: null }],
  ])('takes a %i refusal (%j) as rejected, with the upstream’s reason and code', async (status, error) => {
    answer = reply(status, { error });
    const refused = await failure(provider().submit(job()));
    expect(refused).toMatchObject({ kind: 'rejected', status, message: `upstream answered ${status}: ${error.message}` });
    expect(refused.code).toBe(error.code ?? undefined);
  });

  it.each([
    [404, { message: 'The model `seedance-9` does not exist', type: 'invalid_request_error', code: 'model_not_found' }],
    [400, { message: 'model retired', type: 'invalid_request_error', code: 'model_not_found' }],
    [503, { message: 'no available channel for model doubao-seedance-2-0-pro', type: 'new_api_error', code: 'model_not_found' }],
    [401, { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' }],
    [403, { message: 'this key may not use videos', type: 'invalid_request_error', code: null }],
    [429, { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' }],
    [500, { message: 'The server had an error', type: 'server_error', code: null }],
    [503, { message: 'The engine is currently overloaded', type: 'server_error', code: 'overloaded' }],
  ])('takes a %i (%j) as unavailable: another route may take the job at once', async (status, error) => {
    answer = reply(status, { error });
    expect(await failure(provider().submit(job()))).toMatchObject({ kind: 'unavailable', status });
  });

  it('keeps the Retry-After of a rate limit', async () => {
    answer = reply(429, { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } }, { 'retry-after': '20' });
    expect(await failure(provider().submit(job()))).toMatchObject({ kind: 'unavailable', status: 429, retryAfterSeconds: 20, code: 'rate_limit_exceeded' });
  });

  it.each([502, 504, 524])('takes a proxy’s %i as ambiguous', async (status) => {
    answer = reply(status, '<html><body><h1>Gateway Time-out</h1></body></html>');
    expect(await failure(provider().submit(job()))).toMatchObject({ kind: 'ambiguous', status });
  });

  it('takes silence past the timeout as ambiguous', async () => {
    answer = () => undefined;
    expect(await failure(provider(150).submit(job()))).toMatchObject({ kind: 'ambiguous', message: 'upstream did not answer within 150 ms' });
  });

  it('takes a connection dropped after the request as ambiguous', async () => {
    answer = (res) => res.socket?.destroy();
    const error = await failure(provider().submit(job()));
    expect(error.kind).toBe('ambiguous');
    expect(error.message).toMatch(/^upstream unreachable: /);
  });

  it('takes a refused connection as unavailable', async () => {
    const nowhere = new OpenAIProvider({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: async () => 'k', timeoutMs: 1000 });
    expect(await failure(nowhere.submit(job()))).toMatchObject({ kind: 'unavailable' });
  });

  it('caps a long upstream reason', async () => {
    answer = reply(400, { error: { message: 'x'.repeat(5000), type: 'invalid_request_error' } });
    expect((await failure(provider().submit(job()))).message).toHaveLength(500);
  });
});

describe('OpenAIProvider.status', () => {
  it('asks GET {baseUrl}/videos/{id} with the key', async () => {
    answer = reply(200, video({ id: 'video/1' }));
    await provider().status('video/1');
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/videos/video%2F1' });
    expect(seen[0]!.headers.authorization).toBe('Bearer sk-reseller-123');
  });

  it.each([
    ['queued', 'pending'],
    ['in_progress', 'running'],
    ['completed', 'succeeded'],
    ['failed', 'failed'],
    ['IN_PROGRESS', 'running'],
    ['warming_up', 'running'],
  ])('reads the status %j as phase %j', async (status, phase) => {
    answer = reply(200, video({ status, progress: 40 }));
    expect(await provider().status('video_123')).toMatchObject({ phase, state: status });
  });

  it('reports progress while running, as a number or as the text some relays send', async () => {
    answer = reply(200, video({ status: 'in_progress', progress: 37.6 }));
    expect((await provider().status('video_123')).progress).toBe(38);
    answer = reply(200, video({ status: 'in_progress', progress: '45%' }));
    expect((await provider().status('video_123')).progress).toBe(45);
    answer = reply(200, video({ status: 'in_progress', progress: 'soon' }));
    expect((await provider().status('video_123')).progress).toBe(0);
  });

  it('names the content endpoint as the video of a completed job, its variants as the renditions, progress 100, and the key as its headers', async () => {
    answer = reply(200, video({ status: 'completed', progress: 99 }));
    const p = provider();
    expect(await p.status('video_123')).toEqual({
      upstreamId: 'video_123',
      phase: 'succeeded',
      state: 'completed',
      progress: 100,
      videoUrl: `${baseUrl}/videos/video_123/content`,
      thumbnailUrl: `${baseUrl}/videos/video_123/content?variant=thumbnail`,
      spritesheetUrl: `${baseUrl}/videos/video_123/content?variant=spritesheet`,
      message: '',
    });
    // The archive sends the key to that endpoint, on the configured host only.
    const entry = { name: 'reseller', kind: 'openai' as const, baseUrl, apiKey: 'sk-reseller-123' };
    expect(await videoHeaders(entry, `${baseUrl}/videos/video_123/content`, { UPSTREAM_SECRET_ARNS: {} })).toEqual({ authorization: 'Bearer sk-reseller-123' });
  });

  it('gives the reason of a failed job', async () => {
    answer = reply(200, video({ status: 'failed', error: { code: 'moderation_blocked', message: 'output was blocked' } }));
    const failed = await provider().status('video_123');
    expect(failed).toMatchObject({ phase: 'failed', message: 'output was blocked' });
    expect(failed).not.toHaveProperty('videoUrl');
    expect(failed).not.toHaveProperty('thumbnailUrl');
    answer = reply(200, video({ status: 'failed' }));
    expect((await provider().status('video_123')).message).toBe('the upstream reports the job failed');
  });

  it('caps the status word it keeps', async () => {
    answer = reply(200, video({ status: 'w'.repeat(300) }));
    expect(await provider().status('video_123')).toMatchObject({ phase: 'running', state: 'w'.repeat(64) });
  });

  it.each([
    [500, { error: { message: 'oops' } }],
    [404, { error: { message: 'Video not found', code: 'video_not_found' } }],
    [200, { id: 'video_123' }],
  ])('takes a poll answered %i (%j) as unavailable', async (status, body) => {
    answer = reply(status, body);
    expect((await failure(provider().status('video_123'))).kind).toBe('unavailable');
  });

  it('takes a poll that times out as unavailable: a poll makes no job', async () => {
    answer = () => undefined;
    expect((await failure(provider(150).status('video_123'))).kind).toBe('unavailable');
  });
});

describe('OpenAIProvider: no callbacks, remix', () => {
  it('is poll-only and refuses anything offered as a callback', async () => {
    const p: UpstreamProvider = provider();
    expect(p.callsBack).toBe(false);
    expect(p.cancel).toBeUndefined();
    expect((await failure(p.parseCallback({ body: {}, rawBody: '{}', headers: {} }))).kind).toBe('rejected');
  });

  it('remixes by POST {baseUrl}/videos/{id}/remix with the new prompt', async () => {
    answer = reply(200, video({ id: 'video_remix', remixed_from_video_id: 'video_123' }));
    expect(await provider().remix('video_123', job({ prompt: 'now at night' }))).toEqual({ upstreamId: 'video_remix' });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/videos/video_123/remix' });
    expect(JSON.parse(seen[0]!.body)).toEqual({ prompt: 'now at night' });
    expect(seen[0]!.headers.authorization).toBe('Bearer sk-reseller-123');
  });

  it('classifies a remix’s failures as a submit’s', async () => {
    answer = reply(504, 'Gateway Time-out');
    expect((await failure(provider().remix('video_123', job()))).kind).toBe('ambiguous');
  });
});

describe('OpenAIProvider.findJob', () => {
  const submittedAt = Date.now();
  const now = Math.floor(submittedAt / 1000);
  const page = (data: unknown[], hasMore = false) => ({ object: 'list', data, has_more: hasMore, last_id: (data.at(-1) as { id?: string } | undefined)?.id ?? null });

  it('lists recent jobs newest first and takes the newest with the model, prompt, seconds and size sent', async () => {
    answer = reply(200, page([
      video({ id: 'video_other_prompt', prompt: 'something else' }),
      video({ id: 'video_other_model', model: 'wan-2.7' }),
      video({ id: 'video_other_size', size: '720x1280' }),
      video({ id: 'video_ours' }),
      video({ id: 'video_ours_older', created_at: now - 1 }),
    ]));
    expect(await provider().findJob(job(), submittedAt)).toBe('video_ours');
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/videos?limit=50&order=desc' });
    expect(seen[0]!.headers.authorization).toBe('Bearer sk-reseller-123');
  });

  it('answers null once the listing reaches jobs older than the submit could have made', async () => {
    answer = reply(200, page([video({ id: 'video_other', prompt: 'x' }), video({ id: 'video_ancient', created_at: now - 3600 })], true));
    expect(await provider().findJob(job(), submittedAt)).toBeNull();
    expect(seen).toHaveLength(1);
  });

  it('does not take a matching job made long before the submit', async () => {
    answer = reply(200, page([video({ id: 'video_same_prompt_yesterday', created_at: now - 86_400 })]));
    expect(await provider().findJob(job(), submittedAt)).toBeNull();
  });

  it('reads the next page after the last id while jobs are recent enough', async () => {
    answer = (res, request) =>
      reply(200, request.url.includes('after=video_p1_last')
        ? page([video({ id: 'video_ours' })])
        : page([video({ id: 'video_a', prompt: 'a' }), video({ id: 'video_p1_last', prompt: 'b' })], true))(res);
    expect(await provider().findJob(job(), submittedAt)).toBe('video_ours');
    expect(seen.map((s) => s.url)).toEqual(['/v1/videos?limit=50&order=desc', '/v1/videos?limit=50&order=desc&after=video_p1_last']);
  });

  it('throws, rather than answer null, when the listing cannot be read', async () => {
    answer = reply(404, { error: { message: 'Invalid URL (GET /v1/videos)' } });
    const error = await failure(provider().findJob(job(), submittedAt));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toMatch(/^cannot list the upstream's jobs: upstream answered 404/);
    answer = reply(200, '<html>not json</html>');
    expect((await failure(provider().findJob(job(), submittedAt))).message).toMatch(/not a list of videos/);
  });

  it('throws when a recent job’s listing leaves out what was sent: it may be ours', async () => {
    answer = reply(200, page([video({ id: 'video_other', prompt: 'other' }), video({ id: 'video_unknown', prompt: null })]));
    expect(await failure(provider().findJob(job(), submittedAt))).toMatchObject({
      kind: 'unavailable',
      message: "cannot tell whether job video_unknown is this task's: the upstream's listing leaves out what was sent",
    });
  });

  it('throws when more recent jobs than it reads stand between now and the submit', async () => {
    answer = reply(200, page(Array.from({ length: 50 }, (_, i) => video({ id: `video_${i}`, prompt: `other ${i}` })), true));
    expect((await failure(provider().findJob(job(), submittedAt))).message).toMatch(/more than 200 jobs since/);
    expect(seen).toHaveLength(4);
  });
});
