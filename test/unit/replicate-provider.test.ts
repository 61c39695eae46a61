import Replicate, { validateWebhook } from 'replicate';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ReplicateProvider } from '../../lambdas/shared/providers/replicate';
import { startReplicateUpstream, type ReplicateUpstream } from '../../local/replicate-upstream';
import { asCallbackRequest, failure, job, startCallbackSink, until } from './aggregator-support';

let rep: ReplicateUpstream;
let sink: Awaited<ReturnType<typeof startCallbackSink>>;
const provider = (secret: string | undefined = rep.webhookSecret) =>
  new ReplicateProvider({ baseUrl: rep.url, apiKey: async () => 'r8_key', timeoutMs: 2000, webhookSecret: async () => secret });
const kling = job({ model: 'kwaivgi/kling-v2.1', imageUrls: ['https://example.com/a.png'] });

beforeAll(async () => {
  rep = await startReplicateUpstream({ apiKey: 'r8_key', renderMs: 150 });
  sink = await startCallbackSink();
});
afterAll(async () => {
  await rep.close();
  await sink.close();
});
beforeEach(() => {
  rep.sim.setFaults({});
  sink.received.length = 0;
});

describe('ReplicateProvider against the simulated predictions API', () => {
  it('creates a prediction on the model with a completed-only webhook and Bearer auth, and reads its output URL', async () => {
    const p = provider();
    const { upstreamId } = await p.submit({ ...kling, callbackUrl: sink.callbackUrl('t1') });
    const record = rep.sim.jobs.get(upstreamId)!;
    expect(record.model).toBe('kwaivgi/kling-v2.1');
    expect(record.authorization).toBe('Bearer r8_key');
    expect(record.body).toEqual({
      input: { prompt: kling.prompt, duration: 5, aspect_ratio: '16:9', start_image: 'https://example.com/a.png' },
      webhook: sink.callbackUrl('t1'),
      webhook_events_filter: ['completed'],
    });
    const done = await until(() => p.status(upstreamId), (s) => s.phase === 'succeeded');
    expect(done).toMatchObject({ upstreamId, state: 'succeeded', videoUrl: record.videoUrl, progress: 100 });
  });

  it('sends owner/name:version to /v1/predictions with the version', async () => {
    const { upstreamId } = await provider().submit(job({ model: 'google/veo-3:abc123' }));
    expect(rep.sim.jobs.get(upstreamId)!.body).toMatchObject({ version: 'abc123', input: { prompt: 'a red fox running through snow', duration: 5 } });
    expect(rep.sim.jobs.get(upstreamId)!.model).toBe('unknown/model:abc123');
  });

  it('believes a webhook only with a good Standard Webhooks signature', async () => {
    const p = provider();
    const { upstreamId } = await p.submit(job({ model: 'bytedance/seedance-1-pro', callbackUrl: sink.callbackUrl('t2') }));
    const [hook] = await sink.waitFor('t2');
    expect(hook!.url).toBe('/callbacks/upstream/t2?token=tok-t2');
    expect(await p.parseCallback(asCallbackRequest(hook!, upstreamId))).toMatchObject({ upstreamId, phase: 'succeeded' });
    // The official client agrees the signature is good.
    const h = asCallbackRequest(hook!).headers;
    const signed = { id: h['webhook-id']!, timestamp: h['webhook-timestamp']!, signature: h['webhook-signature']!, body: hook!.rawBody, secret: rep.webhookSecret };
    expect(await validateWebhook(signed)).toBe(true);

    const tampered = { ...asCallbackRequest(hook!), rawBody: hook!.rawBody.replace('succeeded', 'failed') };
    expect((await failure(p.parseCallback(tampered))).message).toMatch(/^replicate webhook signature refused/);
    const unsigned = { ...asCallbackRequest(hook!), headers: { 'content-type': 'application/json' } };
    expect((await failure(p.parseCallback(unsigned))).kind).toBe('rejected');
    const otherSecret = await failure(provider('whsec_' + Buffer.from('another secret of 24 b!!').toString('base64')).parseCallback(asCallbackRequest(hook!)));
    expect(otherSecret.kind).toBe('rejected');
    expect((await failure(provider('').parseCallback(asCallbackRequest(hook!)))).message).toBe(
      'replicate webhooks need the upstream webhookSecret to be verified',
    );
  });

  it('with no signing secret configured, reads the account\'s from the API with the key', async () => {
    const p = new ReplicateProvider({ baseUrl: rep.url, apiKey: async () => 'r8_key', timeoutMs: 2000 });
    const { upstreamId } = await p.submit(job({ model: 'bytedance/seedance-1-pro', callbackUrl: sink.callbackUrl('t3') }));
    const [hook] = await sink.waitFor('t3');
    expect(await p.parseCallback(asCallbackRequest(hook!, upstreamId))).toMatchObject({ upstreamId, phase: 'succeeded' });
    expect(await p.parseCallback(asCallbackRequest(hook!, upstreamId))).toMatchObject({ phase: 'succeeded' });
    const tampered = { ...asCallbackRequest(hook!), rawBody: hook!.rawBody.replace('succeeded', 'failed') };
    expect((await failure(p.parseCallback(tampered))).message).toMatch(/^replicate webhook signature refused/);

    const wrongKey = new ReplicateProvider({ baseUrl: rep.url, apiKey: async () => 'r8_wrong', timeoutMs: 2000 });
    expect(await failure(wrongKey.parseCallback(asCallbackRequest(hook!, upstreamId)))).toMatchObject({ kind: 'unavailable', status: 401 });
  });

  it('maps failed and canceled predictions to failures with their reason, and cancels', async () => {
    const p = provider();
    const failed = await p.submit(job({ model: 'wan-video/wan-2.5-t2v', prompt: 'x sim:fail' }));
    expect(await until(() => p.status(failed.upstreamId), (s) => s.phase === 'failed')).toMatchObject({
      state: 'failed',
      message: 'simulated render failure: the video could not be generated',
    });
    const stalled = await p.submit(job({ model: 'wan-video/wan-2.5-t2v', prompt: 'x sim:render=stall' }));
    await p.cancel(stalled.upstreamId);
    expect(await p.status(stalled.upstreamId)).toMatchObject({ phase: 'failed', state: 'canceled', message: 'the prediction was canceled' });
  });

  it('reads an output that is a list of URLs', () => {
    const status = provider().parsePrediction({ id: 'p1', status: 'succeeded', output: ['https://cdn.example/a.mp4', 'https://cdn.example/b.mp4'] }, 'unavailable');
    expect(status.videoUrl).toBe('https://cdn.example/a.mp4');
    expect(provider().parsePrediction({ id: 'p1', status: 'succeeded', output: null }, 'unavailable').videoUrl).toBeUndefined();
  });

  it('classifies submit failures', async () => {
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:reject' })))).toMatchObject({
      kind: 'rejected',
      status: 422,
      message: 'upstream answered 422: the input was flagged as sensitive (E005)',
    });
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:429' })))).toMatchObject({ kind: 'unavailable', retryAfterSeconds: 1 });
    expect(await failure(provider().submit(job({ model: 'a/b', prompt: 'x sim:500' })))).toMatchObject({ kind: 'unavailable', status: 500 });
    expect((await failure(provider().submit(job({ model: 'not-a-model' })))).kind).toBe('unavailable');
  });
});

describe('the simulator, checked by the replicate client', () => {
  it('serves predictions.create, get and cancel', async () => {
    const client = new Replicate({ auth: 'r8_key', baseUrl: rep.url });
    const created = await client.predictions.create({
      model: 'kwaivgi/kling-v2.1',
      input: { prompt: 'a paper boat on a river', duration: 5 },
      webhook: sink.callbackUrl('c1'),
      webhook_events_filter: ['completed'],
    });
    expect(created.status).toBe('starting');
    const done = await until(() => client.predictions.get(created.id), (p) => p.status === 'succeeded');
    expect(done.output).toBe(rep.sim.jobs.get(created.id)!.videoUrl);
    const stalled = await client.predictions.create({ version: 'v1', input: { prompt: 'sim:render=stall slow' } });
    const canceled = await client.predictions.cancel(stalled.id);
    expect(canceled.status).toBe('canceled');
    expect(await client.webhooks.default.secret.get()).toEqual({ key: rep.webhookSecret });
  });
});
