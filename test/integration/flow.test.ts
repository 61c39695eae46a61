import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoSha256 } from '../../local/mp4';
import { seedExamples, startHarness, startHookReceiver, type Harness } from './helpers';

let h: Harness;
let receiver: Awaited<ReturnType<typeof startHookReceiver>>;

beforeAll(async () => {
  h = await startHarness({ renderMs: 400 });
  receiver = await startHookReceiver();
}, 60_000);

afterAll(async () => {
  await receiver?.close();
  await h?.close();
});

describe('the seed flow, end to end through the local gateway', () => {
  it.each(Object.entries(seedExamples))(
    'seed example "%s" is accepted and ends with an archived video, an S3 event and a verified webhook',
    async (_name, example) => {
      // Sent as in the seed, except that webhooks go to a receiver on this machine.
      const body = 'callback_url' in example ? { ...example, callback_url: receiver.url } : example;
      const res = await h.submit(body);
      expect(res.status).toBe(200);
      const { id } = (await res.json()) as { id: string };
      expect(id).toMatch(/^task_[0-9a-z]{26}$/);

      const first = (await (await h.api(`/v1/videos/generations/${id}`)).json()) as any;
      expect(['queued', 'in_progress']).toContain(first.status);

      const done = await h.waitForStatus(id, 'succeeded');
      expect(done).toMatchObject({
        id,
        state: 'succeeded',
        progress: 100,
        status: 'succeeded',
        model: 'sora-2',
        prompt: example.prompt,
        aspect_ratio: '16:9',
        duration: 15,
        message: '',
        error: null,
        video: { content_type: 'video/mp4' },
      });
      expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);

      // The presigned URL downloads exactly the upstream's bytes.
      const download = await fetch(done.data.videos[0].url);
      expect(download.status).toBe(200);
      const bytes = Buffer.from(await download.arrayBuffer());
      const upstreamTask = [...h.gw.upstream.tasks.values()].find((t) => t.prompt === example.prompt && t.callbacks.length > 0 && bytes.length === t.video.bytes);
      expect(upstreamTask).toBeDefined();
      const sha = createHash('sha256').update(bytes).digest('hex');
      expect(sha).toBe(done.video.sha256);
      expect(bytes.length).toBe(done.video.bytes);
      expect(bytes.toString('latin1', 4, 8)).toBe('ftyp');

      // The seed provider's query path answers the same view.
      const viaTasks = (await (await h.api(`/v1/videos/tasks/${id}`)).json()) as any;
      expect(viaTasks).toMatchObject({ id, status: 'succeeded', video: { sha256: sha } });

      // The content route redirects to a fresh presigned URL of the same object.
      const content = await h.api(`/v1/videos/generations/${id}/content`);
      expect(content.status).toBe(302);
      const redirected = Buffer.from(await (await fetch(content.headers.get('location')!)).arrayBuffer());
      expect(createHash('sha256').update(redirected).digest('hex')).toBe(sha);

      // One S3 ObjectCreated notification for the video, also in .data/s3-events.jsonl.
      const key = `videos/${id}.mp4`;
      const events = h.gw.s3Events.filter((e) => e.s3.object.key === key);
      expect(events).toHaveLength(1);
      expect(events[0]!.eventName).toMatch(/^ObjectCreated:/);
      const logged = readFileSync(join(h.dataDir, 's3-events.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(logged.some((e) => e.Records[0].s3.object.key === key)).toBe(true);

      if ('callback_url' in example) {
        const delivery = await h.waitFor('the webhook', async () =>
          receiver.deliveries.find((d) => JSON.parse(d.body).id === id),
        );
        const verified = new Webhook(h.gw.webhookSecret).verify(delivery.body, {
          'webhook-id': String(delivery.headers['webhook-id']),
          'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
          'webhook-signature': String(delivery.headers['webhook-signature']),
        }) as any;
        expect(verified).toMatchObject({ id, status: 'succeeded', state: 'succeeded', video: { sha256: sha } });
        expect(delivery.headers['webhook-id']).toBe(`${id}.succeeded`);
      }
    },
    30_000,
  );

  it('the simulated video is a real MP4 whose digest the upstream can predict', async () => {
    const res = await h.submit({ model: 'sora-2-pro', prompt: 'a quiet lake', duration: 25 });
    const { id } = (await res.json()) as { id: string };
    const done = await h.waitForStatus(id, 'succeeded');
    const upstream = [...h.gw.upstream.tasks.values()].find((t) => t.prompt === 'a quiet lake')!;
    expect(done.video.sha256).toBe(videoSha256({ taskId: upstream.id, ...upstream.video }));
  });

  it('the task view shows what the archived MP4 measures: the duration and aspect ratio asked for', async () => {
    const landscape = (await (await h.submit({ model: 'sora-2', prompt: 'a measured lake', duration: 10 })).json()) as { id: string };
    const portrait = (await (await h.submit({ model: 'sora-2', prompt: 'a measured tower', duration: 15, aspect_ratio: '9:16' })).json()) as { id: string };
    expect((await h.waitForStatus(landscape.id, 'succeeded')).video).toMatchObject({ duration_seconds: 10, width: 320, height: 180, codec: 'avc1', short: false });
    expect((await h.waitForStatus(portrait.id, 'succeeded')).video).toMatchObject({ duration_seconds: 15, width: 180, height: 320, codec: 'avc1', short: false });
  });

  it('marks a video more than half a second shorter than asked', async () => {
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'a cut-short lake sim:seconds=9.4', duration: 10 })).json()) as { id: string };
    expect((await h.waitForStatus(id, 'succeeded')).video).toMatchObject({ duration_seconds: 9.4, short: true });
    const { id: close } = (await (await h.submit({ model: 'sora-2', prompt: 'a nearly whole lake sim:seconds=9.5', duration: 10 })).json()) as { id: string };
    expect((await h.waitForStatus(close, 'succeeded')).video).toMatchObject({ duration_seconds: 9.5, short: false });
  });

  it('lists the caller\'s tasks newest first, page by page with a cursor', async () => {
    const ids: string[] = [];
    for (const prompt of ['list one', 'list two', 'list three']) {
      ids.push(((await (await h.submit({ model: 'sora-2', prompt })).json()) as { id: string }).id);
    }
    const page1 = (await (await h.api('/v1/videos/generations?limit=2')).json()) as any;
    expect(page1.object).toBe('list');
    expect(page1.data.map((t: any) => t.id)).toEqual([ids[2], ids[1]]);
    expect(page1.has_more).toBe(true);
    const page2 = (await (await h.api(`/v1/videos/generations?limit=2&after=${page1.next_cursor}`)).json()) as any;
    expect(page2.data[0].id).toBe(ids[0]);
    const bad = await h.api('/v1/videos/generations?limit=500');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: 'invalid_request', type: 'invalid_request_error', message: 'limit is at most 100', param: 'limit' } });
  });

  it('another key sees none of these tasks', async () => {
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'private' })).json()) as { id: string };
    const other = await h.gw.createKey('other tenant');
    const res = await h.api(`/v1/videos/generations/${id}`, { key: other });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } });
    const list = (await (await h.api('/v1/videos/generations', { key: other })).json()) as any;
    expect(list.data).toEqual([]);
  });

  it('serves the OpenAPI document generated from the contracts', async () => {
    const res = await h.api('/openapi.json', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const doc = (await res.json()) as any;
    expect(doc.paths['/v1/videos/generations'].post).toBeDefined();
    expect(doc.components.schemas.SubmitRequest.properties.model.enum).toEqual(['sora-2', 'sora-2-pro', 'sora-2-temporary']);
  });

  it('lists the catalog for clients, with no upstream in it', async () => {
    const res = await h.api('/v1/models');
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.object).toBe('list');
    expect(body.data.find((m: any) => m.id === 'sora-2-pro')).toEqual({
      id: 'sora-2-pro',
      object: 'model',
      durations: [10, 15, 25],
      default_duration: 10,
      aspect_ratios: ['16:9', '9:16'],
      default_aspect_ratio: '16:9',
      max_images: 1,
      characters: true,
    });
    expect(JSON.stringify(body)).not.toMatch(/simulated|upstream|127\.0\.0\.1/);
    expect((await h.api('/v1/models', { key: null })).status).toBe(401);
  });

  it('answers an unknown path with the JSON 404', async () => {
    const res = await h.api('/v2/nothing');
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('not_found');
  });
});
