import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bedrockRequestToken } from '../../lambdas/shared/providers/bedrock';
import type { SimulatedBedrock } from '../../local/bedrock-upstream';
import { demoModels } from '../../local/demo-upstreams';
import { deliveriesFor, eventually, startFaultStage, submitOk, verifiedPayload, videoEventsFor, type Backstage, type FaultStage } from './fault-helpers';
import type { Harness } from './helpers';

/**
 * The gateway as `npm start` runs it with no catalog of the operator's: every dialect's
 * simulator and a demo model for each. Here, Bedrock: a poll-only upstream that writes the
 * video into our own bucket, archived by server-side copy.
 */

let stage: FaultStage;
let h: Harness;
let ops: Backstage;
let bedrock: SimulatedBedrock;

beforeAll(async () => {
  stage = await startFaultStage({
    renderMs: 150,
    demo: true,
    env: { POLL_FIRST_SECONDS: '1', POLL_MAX_SECONDS: '2', SILENT_AFTER_SECONDS: '3600', ARCHIVE_MAX_ATTEMPTS: '2' },
  });
  ({ h, ops } = stage);
  bedrock = h.gw.demo!.bedrock;
});

afterAll(() => stage?.close());

const invocationsOf = (taskId: string) => [...bedrock.invocations.values()].filter((i) => i.clientRequestToken === bedrockRequestToken(taskId));

/** What a client must never read: the upstream's name, host, model id and invocation. */
const hidden = () => ['demo-bedrock', 'luma.ray-v2:0', new URL(bedrock.url).host, 'arn:aws:bedrock', 'async-invoke'];

describe('a Bedrock task', () => {
  it('is polled, then archived by server-side copy: the same bytes under videos/, the object under bedrock/ removed', async () => {
    const id = await submitOk(h, { model: 'luma-ray-2', prompt: 'a lighthouse at dusk', duration: 5, aspect_ratio: '9:16', callback_url: stage.hooks.url });
    const view = await h.waitForStatus(id, 'succeeded');

    const [invocation, ...more] = invocationsOf(id);
    expect(more).toEqual([]);
    expect(invocation!.modelInput).toEqual({ prompt: 'a lighthouse at dusk', aspect_ratio: '9:16', duration: '5s', resolution: '720p', loop: false });
    expect(invocation!.written?.key).toMatch(new RegExp(`^bedrock/${id}/[^/]+/output\\.mp4$`));
    const sha256 = bedrock.expectedSha256(invocation!.invocationArn);
    expect(view.video).toMatchObject({ sha256, content_type: 'video/mp4', duration_seconds: expect.any(Number), width: expect.any(Number), height: expect.any(Number) });
    expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual({ sha256, bytes: view.video.bytes });
    expect(await ops.objectKeys(`bedrock/${id}/`)).toEqual([]);
    expect(videoEventsFor(h, id)).toHaveLength(1);
    // Polled by the poll queue: the reconciler (hourly here) never ran, and Bedrock never calls back.
    expect((await ops.item(id)).poll_count).toBeGreaterThanOrEqual(1);

    const [delivery] = await eventually('the webhook', () => deliveriesFor(stage.hooks.deliveries, id)[0] && deliveriesFor(stage.hooks.deliveries, id));
    expect(verifiedPayload(h.gw.webhookSecret, delivery!)).toMatchObject({ id, status: 'succeeded', video: { sha256 } });
    const seen = JSON.stringify(view) + delivery!.body;
    for (const secret of hidden()) expect(seen).not.toContain(secret);
  });

  it('whose output is not a video fails archive_failed: nothing appears under videos/, and Bedrock made one invocation', async () => {
    const id = await submitOk(h, { model: 'luma-ray-2', prompt: 'broken output sim:video=not-video', duration: 5 });
    const view = await h.waitForStatus(id, 'failed');
    expect(view.error.code).toBe('archive_failed');
    expect(view.error.message).toContain('not an MP4 video');
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([]);
    expect(invocationsOf(id)).toHaveLength(1);
    for (const secret of hidden()) expect(JSON.stringify(view)).not.toContain(secret);
  });

  it('refused by Bedrock\'s content filter fails at once with upstream_rejected, in words that name no upstream', async () => {
    const res = await h.submit({ model: 'luma-ray-2', prompt: 'refused sim:submit=reject', duration: 5 });
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(JSON.parse(text).error).toMatchObject({ code: 'upstream_rejected' });
    for (const secret of hidden()) expect(text).not.toContain(secret);
    expect(invocationsOf(res.headers.get('x-task-id')!)).toEqual([]);
  });
});

describe('the demo catalog', () => {
  it('lists the seed models and one demo model per dialect with their own rules, and no upstream', async () => {
    const res = await h.api('/v1/models');
    const text = await res.text();
    const listed = (JSON.parse(text) as { data: { id: string; durations: number[]; max_images: number }[] }).data;
    expect(listed.map((m) => m.id)).toEqual(['sora-2', 'sora-2-pro', 'sora-2-temporary', ...Object.keys(demoModels)]);
    expect(listed.find((m) => m.id === 'luma-ray-2')).toMatchObject({ durations: [5, 9], max_images: 0 });
    for (const secret of ['demo-', 'simulated', ...Object.values(demoModels).map((m) => m.model)]) expect(text).not.toContain(secret);
  });

  it('applies each model\'s own rules both ways: what one model takes and another does not', async () => {
    const refused = async (body: Record<string, unknown>) => {
      const res = await h.submit({ prompt: 'field rules', ...body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      return ((await res.json()) as { error: { code: string; param: string; message: string } }).error;
    };
    // 5 seconds and 1:1 are the demo model's, not the seed's; 15 seconds and characters the seed's, not the demo model's.
    await submitOk(h, { model: 'seedance-2.0', prompt: 'square and short', duration: 5, aspect_ratio: '1:1' });
    await submitOk(h, { model: 'sora-2', prompt: 'the seed rules stay', duration: 15, characters: [{ url: 'https://cdn.example.com/c.mp4', timestamps: '0,3' }] });
    expect(await refused({ model: 'sora-2', duration: 5 })).toEqual({
      code: 'invalid_request',
      type: 'invalid_request_error',
      param: 'duration',
      message: expect.stringMatching(/^duration 5 is only available with .*seedance-2\.0.*\(sora-2 takes 10 or 15\)$/),
    });
    expect(await refused({ model: 'sora-2', aspect_ratio: '1:1' })).toMatchObject({ param: 'aspect_ratio', message: expect.stringContaining('sora-2 takes "16:9" or "9:16"') });
    expect(await refused({ model: 'seedance-2.0', duration: 15 })).toMatchObject({ param: 'duration', message: expect.stringContaining('seedance-2.0 takes 5 or 10') });
    expect(await refused({ model: 'seedance-2.0', duration: 5, characters: [{ url: 'https://cdn.example.com/c.mp4', timestamps: '0,3' }] })).toEqual({
      code: 'invalid_request',
      type: 'invalid_request_error',
      param: 'characters',
      message: 'seedance-2.0 takes no characters',
    });
    // Bedrock's Luma Ray2: 5 or 9 seconds, no reference image.
    const nine = await submitOk(h, { model: 'luma-ray-2', prompt: 'nine seconds', duration: 9 });
    expect(await refused({ model: 'luma-ray-2', duration: 10 })).toMatchObject({ param: 'duration', message: expect.stringContaining('luma-ray-2 takes 5 or 9') });
    expect(await refused({ model: 'luma-ray-2', duration: 5, image_urls: ['https://cdn.example.com/a.png'] })).toEqual({
      code: 'invalid_request',
      type: 'invalid_request_error',
      param: 'image_urls',
      message: 'luma-ray-2 takes no reference image: image_urls must be empty',
    });
    expect((await h.waitForStatus(nine, 'succeeded')).video.duration_seconds).toBe(9);
  });
});
