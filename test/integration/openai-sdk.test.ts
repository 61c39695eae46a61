import { createHash } from 'node:crypto';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey, keyId } from '../../lambdas/shared/api-keys';
import { main as keys } from '../../bin/keys';
import { backstage } from './fault-helpers';
import { startHarness, startHookReceiver, type Harness, videoUntil } from './helpers';

let h: Harness;
let client: OpenAI;

/** The smallest PNG: a 1x1 pixel. */
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

beforeAll(async () => {
  h = await startHarness({ renderMs: 300 });
  client = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: h.gw.apiKey, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const until = videoUntil(() => h, () => client);

describe('the official openai SDK against the local gateway', () => {
  it('creates a video as multipart, polls it to completed, and downloads the archived bytes', async () => {
    const created = await client.videos.create({ model: 'sora-2', prompt: 'a lighthouse at dusk', seconds: '10' as never, size: '720x1280' });
    expect(created).toMatchObject({
      object: 'video',
      model: 'sora-2',
      prompt: 'a lighthouse at dusk',
      size: '720x1280',
      seconds: '10',
      remixed_from_video_id: null,
      error: null,
    });
    expect(['queued', 'in_progress']).toContain(created.status);
    const first = await client.videos.retrieve(created.id).withResponse();
    expect(first.response.headers.get('content-type')).toMatch(/^application\/json/);

    const done = await until(created.id, 'completed');
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);

    // The same task read in the seed dialect: its archived video's digest and measured figures,
    // which the Video object now reports as what was delivered (the simulator renders the
    // requested length and ratio at its own small size).
    const seed = (await (await h.api(`/v1/videos/generations/${created.id}`)).json()) as {
      aspect_ratio: string;
      video: { sha256: string; duration_seconds: number; width: number; height: number };
    };
    expect(seed.aspect_ratio).toBe('9:16');
    expect(seed.video.duration_seconds).toBeCloseTo(10, 1);
    expect(seed.video.height).toBeGreaterThan(seed.video.width);
    expect(done).toMatchObject({ id: created.id, progress: 100, size: `${seed.video.width}x${seed.video.height}`, seconds: '10' });
    const content = await client.videos.downloadContent(created.id);
    const bytes = Buffer.from(await content.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(seed.video.sha256);
  });

  it('creates a video with an uploaded reference image, which the upstream is given as a link', async () => {
    const created = await client.videos.create({
      model: 'sora-2',
      prompt: 'the same lighthouse, at dawn',
      input_reference: await toFile(png, 'ref.png', { type: 'image/png' }),
    });
    expect(created).toMatchObject({ object: 'video', size: '1280x720', seconds: '10' });
    await until(created.id, 'completed');
    const job = [...h.gw.upstream.tasks.values()].find((t) => t.prompt === 'the same lighthouse, at dawn')!;
    const links = JSON.stringify(job.body).match(/http[^"]*\/inputs\/[^"]*/g) ?? [];
    expect(links).toHaveLength(1);
    const image = await fetch(links[0]!.replaceAll('\\u0026', '&'));
    expect(image.status).toBe(200);
    expect(Buffer.from(await image.arrayBuffer()).equals(png)).toBe(true);
  });

  it('resubmits a create with an uploaded image under a link signed at the resubmit, which serves the image', async () => {
    const prompt = 'resubmitted with its uploaded image';
    h.gw.upstream.setFaults({ submit: '503' });
    let created: Awaited<ReturnType<typeof client.videos.create>>;
    try {
      created = await client.videos.create({ model: 'sora-2', prompt, input_reference: await toFile(png, 'ref.png', { type: 'image/png' }) });
    } finally {
      h.gw.upstream.setFaults({});
    }
    expect(created.status).toBe('queued');
    const refusedAt = Date.now();
    // Signatures carry whole seconds: the resubmit's must be a later one.
    await new Promise((r) => setTimeout(r, 1100));
    const ops = backstage(h);
    try {
      await ops.setAttributes(created.id, { due_at: Date.now() - 1 });
      await h.gw.reconcileNow();
    } finally {
      ops.close();
    }
    const job = await h.waitFor('the resubmitted job', async () => [...h.gw.upstream.tasks.values()].find((t) => t.prompt === prompt));
    const [link] = (JSON.stringify(job.body).match(/http[^"]*\/inputs\/[^"]*/g) ?? []).map((l) => new URL(l.replaceAll('\\u0026', '&')));
    expect(link).toBeDefined();
    const signed = link!.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z');
    expect(Date.parse(signed)).toBeGreaterThan(refusedAt);
    const image = await fetch(link!);
    expect(image.status).toBe(200);
    expect(Buffer.from(await image.arrayBuffer()).equals(png)).toBe(true);
    await until(created.id, 'completed');
  });

  it('takes a JSON body with input_reference.image_url, and a seed task reads as a Video', async () => {
    const res = await h.api('/v1/videos', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sora-2-pro', prompt: 'waves', seconds: '25', input_reference: { image_url: 'http://127.0.0.1:9/ref.png' } }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'video', model: 'sora-2-pro', seconds: '25', size: '1280x720' });

    const seed = (await (await h.submit({ model: 'sora-2', prompt: 'made in the seed dialect', aspect_ratio: '9:16' })).json()) as { id: string };
    expect(await client.videos.retrieve(seed.id)).toMatchObject({ id: seed.id, object: 'video', size: '720x1280', seconds: '10' });
  });

  it('lists every video across pages with auto-pagination, newest first, and oldest first with order=asc', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.videos.create({ model: 'sora-2', prompt: `page item ${i}` })).id);
    const seen: string[] = [];
    for await (const video of client.videos.list({ limit: 2 })) seen.push(video.id);
    expect(seen.length).toBeGreaterThanOrEqual(5);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort().reverse());
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());

    const asc: string[] = [];
    for await (const video of client.videos.list({ limit: 3, order: 'asc' })) asc.push(video.id);
    expect(asc).toEqual([...seen].reverse());

    const page = await client.videos.list({ limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.has_more).toBe(true);
  });

  it('answers each field rule as a BadRequestError naming the field', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ prompt: 'x' }, 'model', /model is required/],
      [{ model: 'no-such-model', prompt: 'x' }, 'model', /model must be one of/],
      [{ model: 'sora-2', prompt: '   ' }, 'prompt', /prompt must not be empty/],
      [{ model: 'sora-2', prompt: 'x', seconds: '25' }, 'seconds', /seconds 25 is only available with sora-2-pro/],
      [{ model: 'sora-2', prompt: 'x', seconds: '7' }, 'seconds', /seconds must be 10 or 15/],
      [{ model: 'sora-2', prompt: 'x', size: '1024x1024' }, 'size', /size must be WxH in one of sora-2's aspect ratios/],
      [{ model: 'sora-2', prompt: 'x', size: 'big' }, 'size', /size must be WxH/],
      [{ model: 'sora-2', prompt: 'x', callback_url: 'ftp://example.com/hook' }, 'callback_url', /callback_url must be an http\(s\) URL/],
    ];
    for (const [body, param, message] of cases) {
      const error = await client.videos.create(body as never).catch((e: unknown) => e);
      expect(error, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error, JSON.stringify(body)).toMatchObject({ param, type: 'invalid_request_error', code: 'invalid_request' });
      expect((error as Error).message, JSON.stringify(body)).toMatch(message);
    }
    const notImage = await client.videos
      .create({ model: 'sora-2', prompt: 'x', input_reference: await toFile(Buffer.from('not an image'), 'ref.png', { type: 'image/png' }) })
      .catch((e: unknown) => e);
    expect(notImage).toBeInstanceOf(OpenAI.BadRequestError);
    expect((notImage as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('input_reference');
  });

  it('answers an unknown key with AuthenticationError and an unknown video with NotFoundError', async () => {
    const stranger = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: 'vtg_not_a_key_of_this_gateway', maxRetries: 0 });
    const unknownKey = await stranger.videos.list().catch((e: unknown) => e);
    expect(unknownKey).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(unknownKey).toMatchObject({ status: 401, type: 'authentication_error', code: 'unauthorized', param: undefined });
    const unknownVideo = await client.videos.retrieve('task_00000000000000000000000000').catch((e: unknown) => e);
    expect(unknownVideo).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknownVideo).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'not_found', message: '404 no such task' });
    const variant = await fetch(`${h.gw.url}/v1/videos/task_00000000000000000000000000/content?variant=thumbnail`, {
      headers: { authorization: `Bearer ${h.gw.apiKey}` },
    });
    expect(variant.status).toBe(404);
  });

  it('answers a key over its limit with RateLimitError, typed rate_limit_error, with Retry-After', async () => {
    const key = await h.gw.createKey('sdk-limited');
    const limits = await keys(['limits', keyId(hashKey(key)), '--concurrent', '1', '--data-dir', h.dataDir], { out: () => undefined, err: () => undefined });
    expect(limits).toBe(0);
    const limited = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: key, maxRetries: 0 });
    await limited.videos.create({ model: 'sora-2', prompt: 'holds the one slot sim:render=stall' });
    const refused = await limited.videos.create({ model: 'sora-2', prompt: 'one too many' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, type: 'rate_limit_error', code: 'concurrency_limit' });
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('delete, in both dialects', () => {
  it('deletes a finished video: the SDK gets video.deleted, then NotFoundError, and the task is gone from the seed dialect too', async () => {
    const created = await client.videos.create({ model: 'sora-2', prompt: 'to be deleted' });
    await until(created.id, 'completed');
    const seed = (await (await h.api(`/v1/videos/generations/${created.id}`)).json()) as { video: { url: string } };
    expect((await fetch(seed.video.url)).status).toBe(200);

    expect(await client.videos.delete(created.id)).toEqual({ id: created.id, object: 'video.deleted', deleted: true });
    await expect(client.videos.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.videos.downloadContent(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await h.api(`/v1/videos/generations/${created.id}`)).status).toBe(404);
    expect((await fetch(seed.video.url)).status).toBe(404);
  });

  it('deletes a queued seed task through the seed route: cancelled first, then gone from both dialects', async () => {
    // The upstream is down for this task: it stays queued.
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'deleted while queued sim:503' })).json()) as { id: string };
    expect((await client.videos.retrieve(id)).status).toBe('queued');
    const res = await h.api(`/v1/videos/generations/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id, object: 'video.deleted', deleted: true });
    expect((await h.api(`/v1/videos/generations/${id}`)).status).toBe(404);
    await expect(client.videos.retrieve(id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('keeps a task the upstream is rendering and cannot stop: 409, and it still reads', async () => {
    const created = await client.videos.create({ model: 'sora-2', prompt: 'long render sim:render=60000' });
    await until(created.id, 'in_progress');
    const error = await client.videos.delete(created.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.ConflictError);
    expect(error).toMatchObject({ status: 409, code: 'not_cancellable', type: 'invalid_request_error' });
    expect((error as Error).message).toMatch(/cannot be stopped/);
    const still = await client.videos.retrieve(created.id).withResponse();
    expect(still.data.status).toBe('in_progress');
    // An unfinished video tells the SDK's poller when to ask again.
    expect(still.response.headers.get('openai-poll-after-ms')).toBe('2000');
  });
});

describe('webhooks of tasks made in this dialect', () => {
  it('are OpenAI events that client.webhooks.unwrap verifies with the key\'s secret', async () => {
    const receiver = await startHookReceiver();
    try {
      const ok = await client.videos.create({ model: 'sora-2', prompt: 'hooked', callback_url: receiver.url } as never);
      const failed = await client.videos.create({ model: 'sora-2', prompt: 'hooked and failing sim:fail', callback_url: receiver.url } as never);
      await h.waitFor('two webhooks', async () => (receiver.deliveries.length >= 2 ? true : undefined));
      const events = await Promise.all(
        receiver.deliveries.map((delivery) => client.webhooks.unwrap(delivery.body, delivery.headers as Record<string, string>, h.gw.webhookSecret)),
      );
      expect(events).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: expect.stringMatching(/^evt_/), object: 'event', type: 'video.completed', data: { id: ok.id } }),
          expect.objectContaining({ id: expect.stringMatching(/^evt_/), object: 'event', type: 'video.failed', data: { id: failed.id } }),
        ]),
      );
      const tampered = receiver.deliveries[0]!.body.replace('video.', 'videx.');
      await expect(client.webhooks.unwrap(tampered, receiver.deliveries[0]!.headers as Record<string, string>, h.gw.webhookSecret)).rejects.toThrow();
    } finally {
      await receiver.close();
    }
  });

  it("go to the key's default webhook URL when a create names none, set with `keys set --webhook-url`", async () => {
    const receiver = await startHookReceiver();
    const quiet = { out: () => undefined, err: () => undefined };
    try {
      let made: { id: string; api_key: string; webhook_secret: string } | undefined;
      expect(await keys(['create', '--name', 'sdk app with a default webhook', '--json', '--data-dir', h.dataDir], { out: (s) => (made = JSON.parse(s)), err: () => undefined })).toBe(0);
      expect(await keys(['set', made!.id, '--webhook-url', receiver.url, '--data-dir', h.dataDir], quiet)).toBe(0);
      const app = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: made!.api_key, maxRetries: 0 });

      const video = await app.videos.create({ model: 'sora-2', prompt: 'hooked by default' });
      await h.waitFor('the default webhook', async () => (receiver.deliveries.length >= 1 ? true : undefined));
      const [delivery] = receiver.deliveries;
      const event = await app.webhooks.unwrap(delivery!.body, delivery!.headers as Record<string, string>, made!.webhook_secret);
      expect(event).toMatchObject({ id: expect.stringMatching(/^evt_/), object: 'event', type: 'video.completed', data: { id: video.id } });
      // Signed with this key's secret, not another's.
      await expect(app.webhooks.unwrap(delivery!.body, delivery!.headers as Record<string, string>, h.gw.webhookSecret)).rejects.toThrow();

      // A seed-dialect task of the same key gets its task view there too; one with its own callback_url goes there instead.
      const other = await startHookReceiver();
      try {
        const seed = (await (await h.api('/v1/videos/generations', { key: made!.api_key, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sora-2', prompt: 'seed, hooked by default' }) })).json()) as { id: string };
        const own = await app.videos.create({ model: 'sora-2', prompt: 'hooked elsewhere', callback_url: other.url } as never);
        await h.waitFor('both webhooks', async () => (receiver.deliveries.length >= 2 && other.deliveries.length >= 1 ? true : undefined));
        expect(JSON.parse(receiver.deliveries[1]!.body)).toMatchObject({ id: seed.id, status: 'succeeded' });
        expect(JSON.parse(other.deliveries[0]!.body)).toMatchObject({ type: 'video.completed', data: { id: own.id } });
        expect(receiver.deliveries).toHaveLength(2);
      } finally {
        await other.close();
      }
    } finally {
      await receiver.close();
    }
  });
});
