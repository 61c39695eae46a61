import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stills } from '../../local/openai-upstream';
import { startHarness, type Harness, videoUntil } from './helpers';

/**
 * Thumbnails and spritesheets: archived beside the video when the upstream that made it
 * supplies them (the demo catalog's `seedance-2.0` is on the OpenAI-compatible simulator,
 * which serves both as content variants), served by `content?variant=`, otherwise a 404.
 */
let h: Harness;
let client: OpenAI;

beforeAll(async () => {
  h = await startHarness({ renderMs: 300, demo: true });
  client = new OpenAI({ baseURL: `${h.gw.url}/v1`, apiKey: h.gw.apiKey, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const until = videoUntil(() => h, () => client);
const bytesOf = async (response: Response) => Buffer.from(await response.arrayBuffer());
const variantOf = (id: string, variant: string) => h.api(`/v1/videos/${id}/content?variant=${variant}`);

describe('content variants', () => {
  it('archives the thumbnail and spritesheet an upstream supplies and serves them; a video without them answers 404 for each', async () => {
    const [full, none, broken, seed] = await Promise.all([
      client.videos.create({ model: 'seedance-2.0', prompt: 'a harbour at noon', seconds: '5' as never }),
      client.videos.create({ model: 'seedance-2.0', prompt: 'a harbour at dusk sim:stills=none', seconds: '5' as never }),
      client.videos.create({ model: 'seedance-2.0', prompt: 'a harbour at night sim:stills=not-image', seconds: '5' as never }),
      client.videos.create({ model: 'sora-2', prompt: 'a harbour from the sea' }),
    ]);
    await Promise.all([full, none, broken, seed].map((v) => until(v.id, 'completed')));

    const thumbnail = await client.videos.downloadContent(full.id, { variant: 'thumbnail' });
    expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    expect((await bytesOf(thumbnail)).equals(stills.thumbnail.bytes)).toBe(true);
    const spritesheet = await client.videos.downloadContent(full.id, { variant: 'spritesheet' });
    expect(spritesheet.headers.get('content-type')).toBe('image/jpeg');
    expect((await bytesOf(spritesheet)).equals(stills.spritesheet.bytes)).toBe(true);
    // The redirect is to a presigned link of our bucket, never to the upstream.
    const redirect = await variantOf(full.id, 'thumbnail');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toContain(`/videos/${full.id}.thumbnail.webp`);
    expect(redirect.headers.get('location')).not.toContain(new URL(h.gw.demo!.openai.url).host);

    // Stills missing at the upstream, or bytes that are no image: the video is stored all the same.
    for (const video of [none, broken, seed]) {
      expect((await bytesOf(await client.videos.downloadContent(video.id))).length).toBeGreaterThan(0);
      for (const variant of ['thumbnail', 'spritesheet']) {
        const res = await variantOf(video.id, variant);
        expect(res.status, `${video.prompt} ${variant}`).toBe(404);
        expect(await res.json()).toEqual({
          error: {
            code: 'not_found',
            message: `no ${variant} was supplied with this video; variant=video is always served`,
            param: 'variant',
            type: 'invalid_request_error',
          },
        });
      }
    }

    // Only the MP4s tell the operator's systems: one S3 event per video, none for the stills.
    for (const video of [full, none, broken, seed]) {
      expect(h.gw.s3Events.filter((e) => e.s3.object.key.includes(video.id)).map((e) => e.s3.object.key)).toEqual([`videos/${video.id}.mp4`]);
    }

    // A delete takes the stills with the video.
    const link = redirect.headers.get('location')!;
    expect((await fetch(link)).status).toBe(200);
    await client.videos.delete(full.id);
    expect((await fetch(link)).status).toBe(404);
  });

  it('answers a variant of an unfinished video with 404, and an unknown variant with 400', async () => {
    const running = await client.videos.create({ model: 'sora-2', prompt: 'still going sim:render=60000' });
    const early = await variantOf(running.id, 'thumbnail');
    expect(early.status).toBe(404);
    expect(await early.json()).toMatchObject({ error: { code: 'not_found', message: expect.stringMatching(/is not ready/) } });
    const unknown = await variantOf(running.id, 'poster');
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { param: 'variant', message: 'variant must be video, thumbnail or spritesheet' } });
  });
});
