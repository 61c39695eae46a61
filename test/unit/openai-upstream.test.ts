import { createHash } from 'node:crypto';
import OpenAI, { toFile } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { videoSha256 } from '../../local/mp4';
import { startOpenAIUpstream, stills, type OpenAIUpstream } from '../../local/openai-upstream';

/**
 * The OpenAI-compatible simulator, checked with the official `openai` SDK, so that it
 * cannot drift from the API the `openai` kind's adapter is written against.
 */

const apiKey = 'sk-sim-test';
let up: OpenAIUpstream | undefined;

afterEach(async () => {
  await up?.close();
  up = undefined;
});

async function start(renderMs = 300) {
  up = await startOpenAIUpstream({ apiKey, renderMs });
  const client = new OpenAI({ apiKey, baseURL: up.url, maxRetries: 0, timeout: 5000 });
  return { up, client };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(client: OpenAI, id: string, statuses: string[]) {
  for (let i = 0; i < 200; i += 1) {
    const video = await client.videos.retrieve(id);
    if (statuses.includes(video.status)) return video;
    await sleep(25);
  }
  throw new Error(`video ${id} never reached ${statuses.join('/')}`);
}

const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('tiny')]);

describe('the OpenAI-compatible simulator, through the official SDK', () => {
  it('creates a job from a multipart form, reference image included, and shows it queued', async () => {
    const { up, client } = await start();
    const video = await client.videos.create({
      model: 'doubao-seedance-2-0-pro',
      prompt: 'a lighthouse at dusk',
      seconds: '8',
      size: '1280x720',
      input_reference: await toFile(png, 'ref.png', { type: 'image/png' }),
    });
    expect(video).toMatchObject({ object: 'video', status: 'queued', progress: 0, model: 'doubao-seedance-2-0-pro', seconds: '8', size: '1280x720', prompt: 'a lighthouse at dusk', error: null });
    expect(video.id).toMatch(/^video_/);
    const job = up.jobs.get(video.id)!;
    expect(job.authorization).toBe(`Bearer ${apiKey}`);
    expect(job.inputReference).toEqual({ filename: 'ref.png', contentType: 'image/png', bytes: png.length, sha256: createHash('sha256').update(png).digest('hex') });
  });

  it('renders through in_progress with rising progress to completed, and downloads the MP4 byte-exact', async () => {
    const { up, client } = await start();
    const { id } = await client.videos.create({ model: 'wan-2.7', prompt: 'waves', seconds: '4', size: '720x1280' });
    const running = await until(client, id, ['in_progress']);
    expect(running.progress).toBeLessThan(100);
    const done = await until(client, id, ['completed']);
    expect(done).toMatchObject({ status: 'completed', progress: 100 });
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    const response = await client.videos.downloadContent(id);
    expect(response.headers.get('content-type')).toBe('video/mp4');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(videoSha256({ taskId: id, ...up.jobs.get(id)!.video }));
  });

  it('serves a completed job\'s thumbnail (WebP) and spritesheet (JPEG) as content variants, and none with sim:stills=none', async () => {
    const { client } = await start(100);
    const { id } = await client.videos.create({ model: 'kling-3', prompt: 'a heron' });
    await until(client, id, ['completed']);
    const thumbnail = await client.videos.downloadContent(id, { variant: 'thumbnail' });
    expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    expect(Buffer.from(await thumbnail.arrayBuffer()).equals(stills.thumbnail.bytes)).toBe(true);
    const spritesheet = await client.videos.downloadContent(id, { variant: 'spritesheet' });
    expect(spritesheet.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await spritesheet.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));

    const bare = await client.videos.create({ model: 'kling-3', prompt: 'a heron sim:stills=none' });
    await until(client, bare.id, ['completed']);
    await expect(client.videos.downloadContent(bare.id, { variant: 'thumbnail' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('remixes a completed job into a new one that remembers its source', async () => {
    const { client } = await start(100);
    const { id } = await client.videos.create({ model: 'kling-3', prompt: 'a fox', seconds: '4', size: '1280x720' });
    await until(client, id, ['completed']);
    const remix = await client.videos.remix(id, { prompt: 'a fox, at night' });
    expect(remix).toMatchObject({ status: 'queued', prompt: 'a fox, at night', remixed_from_video_id: id, model: 'kling-3', seconds: '4', size: '1280x720' });
    expect(remix.id).not.toBe(id);
  });

  it('lists jobs newest first, a page at a time, through the SDK’s pagination', async () => {
    const { client } = await start();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await client.videos.create({ prompt: `clip ${i}` })).id);
    const first = await client.videos.list({ limit: 2, order: 'desc' });
    expect(first.data.map((v) => v.id)).toEqual([ids[4], ids[3]]);
    expect(first.has_more).toBe(true);
    const all: string[] = [];
    for await (const video of client.videos.list({ limit: 2, order: 'desc' })) all.push(video.id);
    expect(all).toEqual([...ids].reverse());
  });

  it('deletes a finished job', async () => {
    const { up, client } = await start(50);
    const { id } = await client.videos.create({ prompt: 'short' });
    await until(client, id, ['completed']);
    expect(await client.videos.delete(id)).toEqual({ id, object: 'video.deleted', deleted: true });
    expect(up.jobs.has(id)).toBe(false);
  });

  it('answers errors in the API’s shape, which the SDK raises with status, type and code', async () => {
    const { client } = await start();
    const cases: [() => Promise<unknown>, number, string | null, string][] = [
      [() => client.videos.create({ prompt: 'forbidden sim:reject' }), 400, 'moderation_blocked', 'invalid_request_error'],
      [() => client.videos.create({ prompt: 'busy sim:429=9' }), 429, 'rate_limit_exceeded', 'requests'],
      [() => client.videos.create({ prompt: 'down sim:500' }), 500, 'server_error', 'server_error'],
      [() => client.videos.create({ prompt: 'full sim:503' }), 503, 'overloaded', 'server_error'],
      [() => client.videos.retrieve('video_nope'), 404, 'video_not_found', 'invalid_request_error'],
      [() => client.videos.create({ prompt: '' }), 400, 'missing_required_parameter', 'invalid_request_error'],
    ];
    for (const [call, status, code, type] of cases) {
      const error = await call().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(error).toMatchObject({ status, code, type });
    }
  });

  it('sends the Retry-After of a rate limit', async () => {
    const { client } = await start();
    const error = (await client.videos.create({ prompt: 'busy sim:429=9' }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.headers?.get('retry-after')).toBe('9');
  });

  it('refuses a key it does not know, and an input_reference that is text instead of a file', async () => {
    const { up } = await start();
    const stranger = new OpenAI({ apiKey: 'sk-wrong', baseURL: up.url, maxRetries: 0 });
    await expect(stranger.videos.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    const form = new FormData();
    form.set('prompt', 'a cat');
    form.set('input_reference', 'https://example.com/cat.png');
    const response = await fetch(`${up.url}/videos`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: form });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { message: "Invalid type for 'input_reference': expected a file, but got a string instead.", type: 'invalid_request_error', param: 'input_reference', code: 'invalid_type' },
    });
  });

  it('reports a failed render with its error, and an unknown state word while rendering', async () => {
    const { client } = await start(200);
    const failed = await client.videos.create({ prompt: 'melting sim:fail' });
    expect(await until(client, failed.id, ['failed'])).toMatchObject({ status: 'failed', error: { code: 'video_generation_failed' } });
    const weird = await client.videos.create({ prompt: 'odd sim:state=weird' });
    expect(await until(client, weird.id, ['queued_for_gpu'])).toMatchObject({ status: 'queued_for_gpu' });
    await until(client, weird.id, ['completed']);
  });

  it('will not serve the content of a job that has not finished', async () => {
    const { client } = await start(5000);
    const { id } = await client.videos.create({ prompt: 'slow' });
    await expect(client.videos.downloadContent(id)).rejects.toMatchObject({ status: 404, code: 'video_not_ready' });
  });

  it('makes the job, then loses the answer, for the ambiguous faults', async () => {
    const { up, client } = await start();
    await expect(client.videos.create({ prompt: 'lost sim:submit=accept-drop' })).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    await expect(client.videos.create({ prompt: 'proxy sim:submit=accept-504' })).rejects.toMatchObject({ status: 504 });
    expect(up.jobs.size).toBe(2);
    expect(up.stats.submitsAccepted).toBe(2);
  });
});
