import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_INPUT_IMAGE_BYTES, MAX_VIDEOS_BODY_BYTES } from '../../lambdas/shared/contracts/api';
import { startHarness, type Harness } from './helpers';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const valid = { model: 'sora-2', prompt: 'a red kite over the sea' };
const character = { url: 'https://example.com/c.mp4', timestamps: '0,3' };

/** Each rule of the field table, the answer a client gets, and the field it names. */
const cases: [string, unknown, number, { code: string; message: string; param?: string }][] = [
  ['missing prompt', { model: 'sora-2' }, 400, { code: 'invalid_request', message: 'prompt is required', param: 'prompt' }],
  ['blank prompt', { ...valid, prompt: '   ' }, 400, { code: 'invalid_request', message: 'prompt must not be empty', param: 'prompt' }],
  ['prompt too long', { ...valid, prompt: 'x'.repeat(5001) }, 400, { code: 'invalid_request', message: 'prompt is at most 5000 characters', param: 'prompt' }],
  ['missing model', { prompt: 'x' }, 400, { code: 'invalid_request', message: 'model is required', param: 'model' }],
  ['unknown model', { ...valid, model: 'sora-3' }, 400, { code: 'invalid_request', message: 'model must be one of sora-2, sora-2-pro, sora-2-temporary', param: 'model' }],
  ['duration 25 with sora-2', { ...valid, duration: 25 }, 400, { code: 'invalid_request', message: 'duration 25 is only available with sora-2-pro (sora-2 takes 10 or 15)', param: 'duration' }],
  ['duration 20', { ...valid, duration: 20 }, 400, { code: 'invalid_request', message: 'duration must be 10 or 15', param: 'duration' }],
  ['aspect ratio 4:3', { ...valid, aspect_ratio: '4:3' }, 400, { code: 'invalid_request', message: 'aspect_ratio must be "16:9" or "9:16"', param: 'aspect_ratio' }],
  ['two image URLs', { ...valid, image_urls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'] }, 400, { code: 'invalid_request', message: 'image_urls holds at most 1 URL', param: 'image_urls' }],
  ['image URL not a URL', { ...valid, image_urls: ['car.jpg'] }, 400, { code: 'invalid_request', message: 'image_urls[] must be an http(s) URL', param: 'image_urls[0]' }],
  ['four characters', { ...valid, characters: [character, character, character, character] }, 400, { code: 'invalid_request', message: 'characters holds at most 3 entries', param: 'characters' }],
  ['a 4-second character clip', { ...valid, characters: [{ ...character, timestamps: '0,4' }] }, 400, { code: 'invalid_request', message: 'timestamps: a character clip is at most 3 seconds', param: 'characters[0].timestamps' }],
  ['@character3 with two characters', { ...valid, prompt: '@character3 waves', characters: [character, character] }, 400, { code: 'invalid_request', message: 'prompt names @character3 but 2 characters are given', param: 'prompt' }],
  ['non-URL callback', { ...valid, callback_url: 'not a url' }, 400, { code: 'invalid_request', message: 'callback_url must be an http(s) URL', param: 'callback_url' }],
  ['private-network callback outside local mode is checked too', { ...valid, callback_url: 'http://169.254.169.254/latest' }, 400, { code: 'invalid_request', message: expect.stringContaining('callback_url') as unknown as string, param: 'callback_url' }],
];

async function taskCount() {
  const list = (await (await h.api('/v1/videos/generations?limit=100')).json()) as { data: unknown[] };
  return list.data.length;
}

describe('bad requests get the JSON error, and nothing is written', () => {
  it.each(cases)('%s', async (_name, body, status, error) => {
    const before = await taskCount();
    const res = await h.submit(body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: { ...error, type: 'invalid_request_error' } });
    expect(await taskCount()).toBe(before);
    expect(h.gw.upstream.stats.submitsReceived).toBe(0);
  });

  it('wrong content type is 415', async () => {
    const res = await h.api('/v1/videos/generations', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(valid) });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ error: { code: 'unsupported_media_type', type: 'invalid_request_error', message: 'send the request body as application/json' } });
  });

  it('a JSON body declared in UTF-16 is 415, and nothing is written', async () => {
    const before = await taskCount();
    const res = await h.api('/v1/videos/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-16' },
      body: Buffer.from(JSON.stringify(valid), 'utf16le'),
    });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: { code: 'unsupported_media_type', type: 'invalid_request_error', message: 'send the request body as UTF-8 JSON, not utf-16' } });
    expect(await taskCount()).toBe(before);
  });

  it('a body over 64 KiB is 413', async () => {
    const res = await h.submit({ ...valid, filler: 'x'.repeat(70 * 1024) });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: { code: 'payload_too_large', type: 'invalid_request_error', message: 'request body is over 64 KiB' } });
  });

  it('malformed JSON is 400', async () => {
    const res = await h.submit('{"model": "sora-2", ');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'invalid_request', type: 'invalid_request_error', message: 'request body is not valid JSON' } });
  });

  it('no key, or an unknown key, is 401', async () => {
    for (const key of [null, 'vtg_not_a_key']) {
      const res = await h.api('/v1/videos/generations', { key, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(valid) });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe('unauthorized');
    }
    for (const path of ['/v1/videos/generations', '/v1/videos/generations/task_x', '/v1/videos/tasks/task_x', '/v1/videos/generations/task_x/content']) {
      const res = await h.api(path, { key: null });
      expect(res.status, path).toBe(401);
    }
  });

  it('the bare key without "Bearer" works too', async () => {
    const res = await h.api('/v1/videos/generations', { headers: { authorization: h.gw.apiKey } });
    expect(res.status).toBe(200);
  });

  it('the deprecated single-character fields are accepted with a Deprecation header', async () => {
    h.gw.upstream.setFaults({ render: 'stall' });
    const res = await h.submit({ ...valid, prompt: '@character1 dances', character_url: 'https://example.com/c.mp4', character_timestamps: '1,3' });
    h.gw.upstream.setFaults({});
    expect(res.status).toBe(200);
    expect(res.headers.get('deprecation')).toBe('true');
    const sent = [...h.gw.upstream.tasks.values()].at(-1)!;
    expect(sent.body.characters).toEqual([{ url: 'https://example.com/c.mp4', timestamps: '1,3' }]);
  });

  it('the seed\'s relaxed characters string reaches the upstream as an array', async () => {
    h.gw.upstream.setFaults({ render: 'stall' });
    const res = await h.submit({ ...valid, characters: '[{ url: "https://xxx.com/xxx.mp4", timestamps: "0,3" }]' });
    h.gw.upstream.setFaults({});
    expect(res.status).toBe(200);
    const sent = [...h.gw.upstream.tasks.values()].at(-1)!;
    expect(sent.body.characters).toEqual([{ url: 'https://xxx.com/xxx.mp4', timestamps: '0,3' }]);
    expect(sent.body.callback_url).toMatch(/\/callbacks\/upstream\/task_[0-9a-z]{26}\?token=/);
  });
});

describe('the body limit of POST /v1/videos, the route that takes an uploaded image', () => {
  /** A multipart create whose input_reference is a PNG of `imageBytes`, or whose whole body is `totalBytes`. */
  function multipart(size: { imageBytes: number } | { totalBytes: number }, prompt: string) {
    const boundary = 'vtg-body-limit';
    const head = Buffer.from(
      [
        `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsora-2\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n${prompt}\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="input_reference"; filename="ref.png"\r\nContent-Type: image/png\r\n\r\n`,
      ].join(''),
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const imageBytes = 'imageBytes' in size ? size.imageBytes : size.totalBytes - head.length - tail.length;
    const image = Buffer.alloc(imageBytes);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(image);
    const body = Buffer.concat([head, image, tail]);
    return { body, init: { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body } };
  }

  it('takes an image of the full 10 MiB, its body over 10 MiB with the other fields', async () => {
    const { body, init } = multipart({ imageBytes: MAX_INPUT_IMAGE_BYTES }, 'the largest reference image');
    expect(body.length).toBeGreaterThan(10 * 1024 * 1024);
    const res = await h.api('/v1/videos', init);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'video', prompt: 'the largest reference image' });
  });

  it('reads a body of exactly the limit, and answers its image rule; one byte more is the API\'s 413 for the body, and nothing is written', async () => {
    const before = await taskCount();
    const atLimit = multipart({ totalBytes: MAX_VIDEOS_BODY_BYTES }, 'at the body limit');
    expect(atLimit.body.length).toBe(MAX_VIDEOS_BODY_BYTES);
    const read = await h.api('/v1/videos', atLimit.init);
    expect(read.status).toBe(413);
    expect(await read.json()).toEqual({
      error: { code: 'payload_too_large', type: 'invalid_request_error', message: 'input_reference is over 10 MiB', param: 'input_reference' },
    });

    const over = multipart({ totalBytes: MAX_VIDEOS_BODY_BYTES + 1 }, 'over the body limit');
    expect(over.body.length).toBe(MAX_VIDEOS_BODY_BYTES + 1);
    const refused = await h.api('/v1/videos', over.init);
    expect(refused.status).toBe(413);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await refused.json()).toEqual({ error: { code: 'payload_too_large', type: 'invalid_request_error', message: 'request body is over 10304 KiB' } });
    expect(await taskCount()).toBe(before);
  });
});
