import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OpenRouterProvider, openrouterBody } from '../../lambdas/shared/providers/openrouter';
import { getText, localPolicy } from '../../lambdas/shared/outbound';
import { videoHeaders } from '../../lambdas/shared/providers/upstream-keys';
import { startOpenRouterUpstream, type OpenRouterUpstream } from '../../local/openrouter-upstream';
import { asCallbackRequest, failure, job, startCallbackSink, until } from './aggregator-support';

let or: OpenRouterUpstream;
let sink: Awaited<ReturnType<typeof startCallbackSink>>;
const provider = () => new OpenRouterProvider({ baseUrl: or.url, apiKey: async () => 'sk-or-1', timeoutMs: 2000 });
const veo = job({ model: 'google/veo-3.1', duration: 8, resolution: '720p', imageUrls: ['https://example.com/f.png'] });

beforeAll(async () => {
  or = await startOpenRouterUpstream({ apiKey: 'sk-or-1', renderMs: 150, costPerSecond: 0.4 });
  sink = await startCallbackSink();
});
afterAll(async () => {
  await or.close();
  await sink.close();
});
beforeEach(() => {
  or.sim.setFaults({});
  sink.received.length = 0;
});

describe('OpenRouterProvider against the simulated videos API', () => {
  it('submits with callback_url, and reports completion with the result URL and the reported cost', async () => {
    const p = provider();
    const { upstreamId } = await p.submit({ ...veo, callbackUrl: sink.callbackUrl('t1') });
    const record = or.sim.jobs.get(upstreamId)!;
    expect(record.authorization).toBe('Bearer sk-or-1');
    expect(record.body).toEqual(openrouterBody({ ...veo, callbackUrl: sink.callbackUrl('t1') }));
    expect(record.body).toMatchObject({
      model: 'google/veo-3.1', duration: 8, aspect_ratio: '16:9', resolution: '720p', callback_url: sink.callbackUrl('t1'),
      frame_images: [{ type: 'image_url', image_url: { url: 'https://example.com/f.png' }, frame_type: 'first_frame' }],
    });
    const done = await until(() => p.status(upstreamId), (s) => s.phase === 'succeeded');
    expect(done).toMatchObject({ upstreamId, state: 'completed', videoUrl: record.videoUrl, cost: 3.2 });
  });

  it('confirms a webhook with the job status, so a forged one changes nothing', async () => {
    const p = provider();
    const { upstreamId } = await p.submit({ ...veo, callbackUrl: sink.callbackUrl('t2') });
    const forged = { type: 'video.generation.completed', data: { id: upstreamId, status: 'completed', unsigned_urls: ['https://evil.example/v.mp4'] } };
    const early = await p.parseCallback({ body: forged, rawBody: JSON.stringify(forged), headers: {}, upstreamId });
    expect(early.phase).not.toBe('succeeded');
    const [hook] = await sink.waitFor('t2');
    expect(JSON.parse(hook!.rawBody)).toMatchObject({ type: 'video.generation.completed', data: { id: upstreamId } });
    expect(await p.parseCallback(asCallbackRequest(hook!, upstreamId))).toMatchObject({ phase: 'succeeded', cost: 3.2 });
    expect((await failure(p.parseCallback(asCallbackRequest(hook!, 'another-job')))).kind).toBe('rejected');
    expect((await failure(p.parseCallback({ body: { id: 1 }, rawBody: '', headers: {} }))).kind).toBe('rejected');
  });

  it('uses the authenticated content endpoint when no signed URL is given, with its key', async () => {
    const status = await (async () => {
      const p = provider();
      const { upstreamId } = await p.submit(veo);
      await until(() => p.status(upstreamId), (s) => s.phase === 'succeeded');
      return { p, upstreamId };
    })();
    const content = `${or.url}/videos/${status.upstreamId}/content?index=0`;
    expect((await getText(content, { policy: localPolicy })).status).toBe(401);
    const headers = await videoHeaders({ name: 'openrouter', kind: 'openrouter', baseUrl: or.url, apiKey: 'sk-or-1' }, content, { UPSTREAM_SECRET_ARNS: {} });
    const withKey = await getText(content, { policy: localPolicy, headers, maxResponseBytes: 16 });
    expect(withKey.status).toBe(200);
    expect(withKey.headers['content-type']).toBe('video/mp4');
  });

  it('maps failed, cancelled and expired jobs to failures with their reason', async () => {
    const p = provider();
    const failed = await p.submit(job({ model: 'alibaba/wan-2.6', prompt: 'x sim:fail' }));
    expect(await until(() => p.status(failed.upstreamId), (s) => s.phase === 'failed')).toMatchObject({
      state: 'failed', message: 'simulated render failure: the video could not be generated',
    });
    const stalled = await p.submit(job({ model: 'alibaba/wan-2.6', prompt: 'x sim:state=expired sim:render=stall' }));
    expect(await until(() => p.status(stalled.upstreamId), (s) => s.state !== 'pending')).toMatchObject({
      phase: 'failed', state: 'expired', message: 'the video job ended expired',
    });
  });

  it('classifies submit failures', async () => {
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:reject' })))).toMatchObject({ kind: 'rejected', status: 400 });
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:429=3' })))).toMatchObject({ kind: 'unavailable', retryAfterSeconds: 3 });
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:503' })))).toMatchObject({ kind: 'unavailable', status: 503 });
  });
});
