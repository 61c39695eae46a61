import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness, videoUntil } from './helpers';

/**
 * Remix through the local gateway with the demo catalog: the seed's models on the simulated
 * upstream (the duomi dialect), `seedance-2.0` on the OpenAI-compatible simulator, and
 * `kling-2.1` on fal's queue, which has no remix.
 */
let h: Harness;
let client: OpenAI;

beforeAll(async () => {
  h = await startHarness({ renderMs: 300, demo: true, env: { RESUBMIT_BASE_SECONDS: '1' } });
  client = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: h.gw.apiKey, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const until = videoUntil(() => h, () => client);

type SeedView = { status: string; remixed_from: string | null; duration: number; aspect_ratio: string; video: { sha256: string } | null };
const seedView = async (id: string) => (await (await h.api(`/v1/videos/generations/${id}`)).json()) as SeedView;

const remixSeed = (id: string, body: unknown, key?: string) =>
  h.api(`/v1/videos/generations/${id}/remix`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(key ? { key } : {}),
  });

describe('remix with the official openai SDK', () => {
  it('remixes a completed video at the upstream that made it: a new Video naming its original, with its length and size', async () => {
    const original = await client.videos.create({ model: 'sora-2', prompt: 'a red kite over a beach', seconds: '15' as never, size: '720x1280' });
    await until(original.id, 'completed');

    const remix = await client.videos.remix(original.id, { prompt: 'the same kite, in a storm' });
    expect(remix).toMatchObject({
      object: 'video',
      model: 'sora-2',
      prompt: 'the same kite, in a storm',
      seconds: '15',
      size: '720x1280',
      remixed_from_video_id: original.id,
      error: null,
    });
    expect(remix.id).not.toBe(original.id);
    const done = await until(remix.id, 'completed');
    expect(done.remixed_from_video_id).toBe(original.id);

    // The upstream was asked to remix its own job, not to render a new one from the prompt.
    const jobs = [...h.gw.upstream.tasks.values()];
    const source = jobs.find((t) => t.prompt === 'a red kite over a beach')!;
    const made = jobs.find((t) => t.prompt === 'the same kite, in a storm')!;
    expect(made.remixedFrom).toBe(source.id);
    expect(made.body).toMatchObject({ duration: 15, aspect_ratio: '9:16' });

    // Its own archived video, and the seed dialect reads the same task with its origin.
    const seed = await seedView(remix.id);
    expect(seed).toMatchObject({ status: 'succeeded', remixed_from: original.id, duration: 15, aspect_ratio: '9:16' });
    expect(seed.video?.sha256).not.toBe((await seedView(original.id)).video?.sha256);
    const bytes = Buffer.from(await (await client.videos.downloadContent(remix.id)).arrayBuffer());
    expect(bytes.length).toBeGreaterThan(0);
    expect((await seedView(original.id)).remixed_from).toBeNull();
  });

  it('remixes a video of an OpenAI-compatible upstream through that upstream', async () => {
    const original = await client.videos.create({ model: 'seedance-2.0', prompt: 'a paper boat on a river', seconds: '5' as never });
    await until(original.id, 'completed');
    const remix = await client.videos.remix(original.id, { prompt: 'the paper boat, at night' });
    expect(remix).toMatchObject({ model: 'seedance-2.0', seconds: '5', remixed_from_video_id: original.id });
    await until(remix.id, 'completed');
    const sim = h.gw.demo!.openai;
    const jobs = [...sim.jobs.values()];
    const source = jobs.find((j) => j.prompt === 'a paper boat on a river')!;
    expect(jobs.find((j) => j.prompt === 'the paper boat, at night')?.remixedFrom).toBe(source.id);
  });

  it('refuses what cannot be remixed: an unfinished video (409), a model whose upstream cannot remix (400), a blank prompt (400)', async () => {
    const running = await client.videos.create({ model: 'sora-2', prompt: 'still rendering sim:render=60000' });
    const notReady = await client.videos.remix(running.id, { prompt: 'too soon' }).catch((e: unknown) => e);
    expect(notReady).toBeInstanceOf(OpenAI.ConflictError);
    expect(notReady).toMatchObject({ status: 409, code: 'video_not_ready', type: 'invalid_request_error' });
    expect((notReady as Error).message).toMatch(/only a completed video can be/);

    const failed = await client.videos.create({ model: 'sora-2', prompt: 'will fail sim:fail' });
    await until(failed.id, 'failed');
    await expect(client.videos.remix(failed.id, { prompt: 'from a failure' })).rejects.toMatchObject({ status: 409, code: 'video_not_ready' });

    const fal = await client.videos.create({ model: 'kling-2.1', prompt: 'a glass of water', seconds: '5' as never });
    await until(fal.id, 'completed');
    const unsupported = await client.videos.remix(fal.id, { prompt: 'a glass of wine' }).catch((e: unknown) => e);
    expect(unsupported).toBeInstanceOf(OpenAI.BadRequestError);
    expect(unsupported).toMatchObject({ status: 400, code: 'remix_unsupported', type: 'invalid_request_error' });
    expect((unsupported as Error).message).toMatch(/model kling-2\.1 cannot remix videos/);
    // Nothing of the upstream's leaks into the refusal.
    expect(JSON.stringify(unsupported)).not.toMatch(/fal-ai|demo-fal/);

    const done = await client.videos.create({ model: 'sora-2', prompt: 'a finished one' });
    await until(done.id, 'completed');
    const blank = await client.videos.remix(done.id, { prompt: '   ' }).catch((e: unknown) => e);
    expect(blank).toBeInstanceOf(OpenAI.BadRequestError);
    expect(blank).toMatchObject({ param: 'prompt', code: 'invalid_request' });
    expect((blank as Error).message).toMatch(/prompt must not be empty/);
    await expect(client.videos.remix('task_00000000000000000000000000', { prompt: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('a remix while its upstream is down', () => {
  it('stays queued, and is remixed (not rendered anew) when the upstream is back', async () => {
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'a clock tower' })).json()) as { id: string };
    await h.waitForStatus(id, 'succeeded');
    h.gw.upstream.setFaults({ submit: '503' });
    let remix: { id: string };
    try {
      const res = await remixSeed(id, { prompt: 'the clock tower, melting' });
      expect(res.status).toBe(200);
      remix = (await res.json()) as { id: string };
      expect((await seedView(remix.id)).status).toBe('queued');
    } finally {
      h.gw.upstream.setFaults({});
    }
    // Due again after the backoff; the safety net hands it over.
    await new Promise((r) => setTimeout(r, 1_500));
    await h.gw.reconcileNow();
    await h.waitForStatus(remix.id, 'succeeded');
    const jobs = [...h.gw.upstream.tasks.values()];
    const source = jobs.find((t) => t.prompt === 'a clock tower')!;
    const made = jobs.filter((t) => t.prompt === 'the clock tower, melting');
    expect(made).toHaveLength(1);
    expect(made[0]!.remixedFrom).toBe(source.id);
  });
});

describe('remix in the seed dialect', () => {
  it('answers the new task id; the task reads with remixed_from; another key gets 404', async () => {
    const { id } = (await (await h.submit({ model: 'sora-2-pro', prompt: 'a slow pan over mountains', duration: 25 })).json()) as { id: string };
    await h.waitForStatus(id, 'succeeded');

    const res = await remixSeed(id, { prompt: 'the mountains under snow' });
    expect(res.status).toBe(200);
    const remix = (await res.json()) as { id: string };
    expect(Object.keys(remix)).toEqual(['id']);
    await h.waitForStatus(remix.id, 'succeeded');
    expect(await seedView(remix.id)).toMatchObject({ remixed_from: id, duration: 25, aspect_ratio: '16:9' });

    const other = await h.gw.createKey('someone-else');
    const stranger = await remixSeed(id, { prompt: 'not mine' }, other);
    expect(stranger.status).toBe(404);
    expect(await stranger.json()).toMatchObject({ error: { code: 'not_found' } });

    const missing = await remixSeed(id, {});
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({
      error: { code: 'invalid_request', message: 'prompt is required', param: 'prompt', type: 'invalid_request_error' },
    });
  });

  it('replays a remix with the same Idempotency-Key without a second upstream job', async () => {
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'a lantern in fog' })).json()) as { id: string };
    await h.waitForStatus(id, 'succeeded');
    const send = () =>
      h.api(`/v1/videos/generations/${id}/remix`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'remix-lantern-1' },
        body: JSON.stringify({ prompt: 'the lantern, blue' }),
      });
    const first = (await (await send()).json()) as { id: string };
    const again = (await (await send()).json()) as { id: string };
    expect(again.id).toBe(first.id);
    expect([...h.gw.upstream.tasks.values()].filter((t) => t.prompt === 'the lantern, blue')).toHaveLength(1);
  });
});
