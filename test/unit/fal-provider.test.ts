import { createFalClient } from '@fal-ai/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { falFamily, falInput } from '../../lambdas/shared/providers/fal-models';
import { FalProvider } from '../../lambdas/shared/providers/fal';
import { startFalUpstream, type FalUpstream } from '../../local/fal-upstream';
import { videoSha256 } from '../../local/mp4';
import { asCallbackRequest, failure, job, startCallbackSink, until } from './aggregator-support';

let fal: FalUpstream;
let sink: Awaited<ReturnType<typeof startCallbackSink>>;
const provider = (timeoutMs = 2000) => new FalProvider({ name: 'fal-main', baseUrl: fal.url, apiKey: async () => 'fal-key-1', timeoutMs });

beforeAll(async () => {
  fal = await startFalUpstream({ apiKey: 'fal-key-1', renderMs: 150 });
  sink = await startCallbackSink();
});
afterAll(async () => {
  await fal.close();
  await sink.close();
});
beforeEach(() => {
  fal.sim.setFaults({});
  sink.received.length = 0;
});

describe('fal model families', () => {
  it('builds each family its own input', () => {
    const base = job({ imageUrls: ['https://example.com/first.png'], resolution: '720p' });
    expect(falFamily('fal-ai/kling-video/v2.1/master/image-to-video')).toBe('kling');
    expect(falInput({ ...base, model: 'fal-ai/kling-video/v2.1/master/image-to-video' })).toEqual({
      prompt: base.prompt, aspect_ratio: '16:9', image_url: 'https://example.com/first.png', duration: '5',
    });
    expect(falInput({ ...base, model: 'fal-ai/veo3/fast', duration: 8 })).toMatchObject({ duration: '8s', resolution: '720p' });
    expect(falInput({ ...base, model: 'fal-ai/bytedance/seedance/v1/pro/text-to-video', duration: 10 })).toMatchObject({ duration: '10', resolution: '720p' });
    expect(falInput({ ...base, model: 'fal-ai/wan-25-preview/text-to-video' })).toMatchObject({ duration: '5' });
    expect(falInput({ ...base, model: 'fal-ai/wan/v2.2-a14b/text-to-video' })).toMatchObject({ num_frames: 81 });
    expect(falInput({ ...base, model: 'fal-ai/luma-dream-machine/ray-2' })).toMatchObject({ duration: 5 });
  });
});

describe('FalProvider against the simulated queue', () => {
  it('submits with the webhook and Key auth, follows the status to COMPLETED and reads video.url from the result', async () => {
    const p = provider();
    const { upstreamId } = await p.submit(job({ callbackUrl: sink.callbackUrl('task_1') }));
    expect(upstreamId).toMatch(/^fal-ai\/kling-video\/requests\/fal_/);
    const record = fal.sim.jobs.get(upstreamId.split('/').pop()!)!;
    expect(record.authorization).toBe('Key fal-key-1');
    expect(record.model).toBe('fal-ai/kling-video/v2.1/master/text-to-video');
    expect(record.callbackUrl).toBe(sink.callbackUrl('task_1'));
    expect(record.body).toEqual({ prompt: 'a red fox running through snow', aspect_ratio: '16:9', duration: '5' });

    expect((await p.status(upstreamId)).phase).toMatch(/pending|running/);
    const done = await until(() => p.status(upstreamId), (s) => s.phase === 'succeeded');
    expect(done).toMatchObject({ upstreamId, state: 'COMPLETED', videoUrl: record.videoUrl });
    const video = await fetch(done.videoUrl!);
    expect(video.headers.get('content-type')).toBe('video/mp4');
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(Buffer.from(await video.arrayBuffer())).digest('hex')).toBe(videoSha256({ taskId: record.id, ...record.video }));
  });

  it('accepts a webhook only as a name: the status endpoint says what happened', async () => {
    const p = provider();
    const { upstreamId } = await p.submit(job({ callbackUrl: sink.callbackUrl('task_2') }));
    const requestId = upstreamId.split('/').pop()!;
    // A forged "OK" while the job still renders changes nothing: fal says it is not done.
    const forged = { request_id: requestId, status: 'OK', payload: { video: { url: 'https://evil.example/x.mp4' } } };
    const early = await p.parseCallback({ body: forged, rawBody: JSON.stringify(forged), headers: {}, upstreamId });
    expect(early.phase).not.toBe('succeeded');
    expect(early.videoUrl).toBeUndefined();
    // The real webhook arrives once, and is confirmed.
    const [real] = await sink.waitFor('task_2');
    expect(JSON.parse(real!.rawBody)).toMatchObject({ request_id: requestId, status: 'OK' });
    const confirmed = await p.parseCallback(asCallbackRequest(real!, upstreamId));
    expect(confirmed).toMatchObject({ phase: 'succeeded', videoUrl: fal.sim.jobs.get(requestId)!.videoUrl });
    // A webhook naming another request than the task holds, or for a task that holds none, is refused.
    expect((await failure(p.parseCallback({ ...asCallbackRequest(real!), upstreamId: 'fal-ai/kling-video/requests/other' }))).kind).toBe('rejected');
    expect((await failure(p.parseCallback(asCallbackRequest(real!)))).message).toBe('no fal request is recorded for this task');
    expect((await failure(p.parseCallback({ body: { hello: 1 }, rawBody: '{}', headers: {}, upstreamId }))).kind).toBe('rejected');
  });

  it('reports a failed render with fal\'s error, and a cancelled request as failed', async () => {
    const p = provider();
    const failed = await p.submit(job({ prompt: 'a storm sim:fail' }));
    expect(await until(() => p.status(failed.upstreamId), (s) => s.phase !== 'pending' && s.phase !== 'running')).toMatchObject({
      phase: 'failed',
      message: 'simulated render failure: the video could not be generated (runner_error)',
    });
    const stalled = await p.submit(job({ prompt: 'a calm sea sim:render=stall' }));
    await p.cancel(stalled.upstreamId);
    expect(await p.status(stalled.upstreamId)).toMatchObject({ phase: 'failed', message: 'the request was cancelled (request_cancelled)' });
    // Cancelling what has already ended is no error: there is nothing left to stop.
    await expect(p.cancel(stalled.upstreamId)).resolves.toBeUndefined();
  });

  it('classifies submit failures: refusal is rejected, 429 and 5xx unavailable, silence ambiguous', async () => {
    const reject = await failure(provider().submit(job({ prompt: 'x sim:reject' })));
    expect(reject).toMatchObject({ kind: 'rejected', status: 422 });
    expect(reject.message).toBe('upstream answered 422: the prompt was flagged by the content checker');
    expect(await failure(provider().submit(job({ prompt: 'x sim:429=7' })))).toMatchObject({ kind: 'unavailable', status: 429, retryAfterSeconds: 7 });
    expect(await failure(provider().submit(job({ prompt: 'x sim:503' })))).toMatchObject({ kind: 'unavailable', status: 503 });
    const stall = await failure(provider(300).submit(job({ prompt: 'x sim:submit=stall' })));
    expect(stall.kind).toBe('ambiguous');
    const badKey = new FalProvider({ baseUrl: fal.url, apiKey: async () => 'wrong', timeoutMs: 2000 });
    expect(await failure(badKey.submit(job()))).toMatchObject({ kind: 'unavailable', status: 401 });
    const refused = new FalProvider({ baseUrl: 'http://127.0.0.1:1', apiKey: async () => 'k', timeoutMs: 2000 });
    expect((await failure(refused.submit(job()))).kind).toBe('unavailable');
  });

  it('reports poll failures as unavailable, and an unknown state word as running', async () => {
    const p = provider();
    const polled = await p.submit(job({ prompt: 'x sim:poll=500' }));
    expect(await failure(p.status(polled.upstreamId))).toMatchObject({ kind: 'unavailable', status: 500 });
    const weird = await p.submit(job({ prompt: 'x sim:state=weird sim:render=stall' }));
    const running = await until(() => p.status(weird.upstreamId), (s) => s.state !== 'IN_QUEUE');
    expect(running).toMatchObject({ phase: 'running', state: 'queued_for_gpu' });
  });
});

describe('the simulator, checked by @fal-ai/client', () => {
  it('serves the official client\'s queue submit, status, result and cancel', async () => {
    const client = createFalClient({
      credentials: 'fal-key-1',
      // The client builds https://queue.fal.run/… URLs; the middleware sends them to loopback.
      requestMiddleware: async (request) => ({ ...request, url: request.url.replace('https://queue.fal.run', fal.url) }),
    });
    const model = 'fal-ai/kling-video/v2.1/master/text-to-video';
    const submitted = await client.queue.submit(model, { input: { prompt: 'a lighthouse at dusk', duration: '5' }, webhookUrl: sink.callbackUrl('task_c') });
    expect(submitted.request_id).toMatch(/^fal_/);
    expect(fal.sim.jobs.get(submitted.request_id)!.callbackUrl).toBe(sink.callbackUrl('task_c'));
    const completed = await client.queue.subscribeToStatus(model, { requestId: submitted.request_id, pollInterval: 25 });
    expect(completed.status).toBe('COMPLETED');
    const result = await client.queue.result(model, { requestId: submitted.request_id });
    expect((result.data as { video: { url: string } }).video.url).toBe(fal.sim.jobs.get(submitted.request_id)!.videoUrl);
    expect(result.requestId).toBe(submitted.request_id);

    const stalled = await client.queue.submit(model, { input: { prompt: 'sim:render=stall a long take' } });
    expect((await client.queue.status(model, { requestId: stalled.request_id })).status).toMatch(/IN_QUEUE|IN_PROGRESS/);
    await client.queue.cancel(model, { requestId: stalled.request_id });
    expect(fal.sim.jobs.get(stalled.request_id)!.phase).toBe('canceled');
  });
});
