import { createServer } from 'node:net';
import {
  AccessDeniedException,
  BedrockRuntimeClient,
  ConflictException,
  InternalServerException,
  ListAsyncInvokesCommand,
  ServiceQuotaExceededException,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BedrockProvider, bedrockRequestToken, classifyBedrockError } from '../../lambdas/shared/providers/bedrock';
import { bedrockModelInput } from '../../lambdas/shared/providers/bedrock-models';
import { UpstreamError, type UpstreamJob } from '../../lambdas/shared/providers/provider';
import { startBedrockStack } from '../support/bedrock-stack';

let stack: Awaited<ReturnType<typeof startBedrockStack>>;
let provider: BedrockProvider;
const credentials = { accessKeyId: 'AK', secretAccessKey: 'SK' };

beforeAll(async () => {
  stack = await startBedrockStack({ renderMs: 120 });
  provider = new BedrockProvider({ name: 'aws', region: 'us-west-2', bucket: stack.s3.bucket, timeoutMs: 400, endpoint: stack.bedrock.url, credentials });
});
afterAll(() => stack.close());
beforeEach(() => stack.bedrock.setFaults({}));

let n = 0;
const job = (over: Partial<UpstreamJob> = {}): UpstreamJob => ({
  taskId: `task_01jbedrock${String(++n).padStart(4, '0')}`,
  model: 'luma.ray-v2:0',
  prompt: 'a paper boat in the rain',
  aspectRatio: '9:16',
  duration: 5,
  imageUrls: [],
  characters: [],
  callbackUrl: 'http://127.0.0.1:1/callbacks/upstream/x?token=t',
  ...over,
});

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as UpstreamError);

async function settled(id: string) {
  for (let i = 0; i < 200; i++) {
    const s = await provider.status(id);
    if (s.phase !== 'running' && s.phase !== 'pending') return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('never settled');
}

describe('the bedrock provider against the simulated Bedrock runtime', () => {
  it('is poll-only, and sends Luma Ray2 its own input, an output folder of the task in our bucket and a token from the task id', async () => {
    expect(provider).toMatchObject({ kind: 'bedrock', callsBack: false, name: 'aws' });
    const j = job({ resolution: '540p' });
    const { upstreamId } = await provider.submit(j);
    const inv = stack.bedrock.invocations.get(upstreamId)!;
    expect(inv.modelId).toBe('luma.ray-v2:0');
    expect(inv.modelInput).toEqual({ prompt: 'a paper boat in the rain', aspect_ratio: '9:16', duration: '5s', resolution: '540p', loop: false });
    expect(inv.outputUri).toBe(`s3://${stack.s3.bucket}/bedrock/${j.taskId}/${inv.invocationId}`);
    expect(inv.clientRequestToken).toBe(j.taskId.replace('_', '-'));
    expect(inv.clientRequestToken).toBe(bedrockRequestToken(j.taskId));
  });

  it('reports InProgress as running, then Completed with the video as s3://bucket/key of the output.mp4 it wrote', async () => {
    const { upstreamId } = await provider.submit(job());
    expect(await provider.status(upstreamId)).toMatchObject({ phase: 'running', state: 'InProgress', progress: 0 });
    const done = await settled(upstreamId);
    const inv = stack.bedrock.invocations.get(upstreamId)!;
    expect(done).toMatchObject({ phase: 'succeeded', state: 'Completed', progress: 100, upstreamId });
    expect(done.videoUrl).toBe(`s3://${stack.s3.bucket}/${inv.written!.key}`);
    expect(inv.written!.key).toMatch(/^bedrock\/task_01jbedrock\d+\/[a-f0-9]+\/output\.mp4$/);
    expect(await stack.s3.read(inv.written!.key)).toBeDefined();
  });

  it("reports a failed render with Bedrock's failureMessage, and an unknown status word as still running", async () => {
    const failed = await settled((await provider.submit(job({ prompt: 'doomed sim:fail' }))).upstreamId);
    expect(failed).toMatchObject({ phase: 'failed', state: 'Failed', message: expect.stringMatching(/could not be generated/) });
    const odd = await provider.submit(job({ prompt: 'odd sim:state=weird sim:render=stall' }));
    expect(await provider.status(odd.upstreamId)).toMatchObject({ phase: 'running', state: 'queued_for_gpu' });
  });

  it('a resubmit of the same task after an ambiguous answer gets the same invocation: one job at Bedrock', async () => {
    const j = job();
    const before = stack.bedrock.invocations.size;
    const a = await provider.submit(j);
    const b = await provider.submit(j);
    expect(b.upstreamId).toBe(a.upstreamId);
    expect(stack.bedrock.invocations.size).toBe(before + 1);
  });

  it('findJob finds the invocation a task made, by its token, and is sure when there is none', async () => {
    const submittedAt = Date.now();
    const j = job();
    const { upstreamId } = await provider.submit(j);
    expect(await provider.findJob(j, submittedAt)).toBe(upstreamId);
    expect(await provider.findJob(job(), submittedAt)).toBeNull();
  });

  it('a stalled submit is ambiguous; findJob then says Bedrock holds no job for it', async () => {
    stack.bedrock.setFaults({ submit: 'stall' });
    const j = job();
    const e = await failure(provider.submit(j));
    expect(e).toMatchObject({ kind: 'ambiguous', message: 'upstream did not answer within 400 ms' });
    stack.bedrock.setFaults({});
    expect(await provider.findJob(j, Date.now() - 1000)).toBeNull();
  });

  it('classifies what Bedrock answers: content filters rejected; throttling, outages, retired and unknown models unavailable', async () => {
    expect(await failure(provider.submit(job({ prompt: 'x sim:reject' })))).toMatchObject({
      kind: 'rejected',
      status: 400,
      code: 'ValidationException',
      message: 'upstream answered 400: ValidationException: This request has been blocked by our content filters. Please adjust your text prompt to submit a new request.',
    });
    expect(await failure(provider.submit(job({ prompt: 'x sim:429=7' })))).toMatchObject({ kind: 'unavailable', retryAfterSeconds: 7 });
    for (const [fault, status, code] of [['429', 429, 'ThrottlingException'], ['500', 500, 'InternalServerException'], ['503', 503, 'ServiceUnavailableException']] as const) {
      stack.bedrock.setFaults({ submit: fault });
      expect(await failure(provider.submit(job()))).toMatchObject({ kind: 'unavailable', status, code });
    }
    stack.bedrock.setFaults({});
    expect(await failure(provider.submit(job({ model: 'amazon.nova-reel-v1:1' })))).toMatchObject({ kind: 'unavailable' });
    expect(await failure(provider.submit(job({ model: 'luma.ray-v2:7' })))).toMatchObject({ kind: 'unavailable', code: 'ValidationException' });
  });

  it('a status poll that fails is unavailable (ask again later)', async () => {
    const { upstreamId } = await provider.submit(job({ prompt: 'x sim:poll=500' }));
    expect(await failure(provider.status(upstreamId))).toMatchObject({ kind: 'unavailable', status: 500 });
  });

  it('a refused connection is unavailable: nothing was sent', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const down = new BedrockProvider({ name: 'down', region: 'us-west-2', bucket: 'gateway-videos', timeoutMs: 1000, endpoint: `http://127.0.0.1:${port}`, credentials });
    expect(await failure(down.submit(job()))).toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/^upstream unreachable: .*ECONNREFUSED/) });
  });

  it('refuses, before sending anything, what Luma Ray2 cannot render', async () => {
    const before = stack.bedrock.stats.submitsReceived;
    expect(await failure(provider.submit(job({ duration: 10 })))).toMatchObject({
      kind: 'rejected',
      message: 'Luma Ray2 on Bedrock takes durations 5 and 9 seconds; this task asks for duration 10s',
    });
    expect(await failure(provider.submit(job({ imageUrls: ['https://example.com/a.png'] })))).toMatchObject({ kind: 'rejected', message: expect.stringMatching(/takes no reference image/) });
    expect(await failure(provider.submit(job({ resolution: '1080p' })))).toMatchObject({ kind: 'rejected', message: expect.stringMatching(/resolutions 540p and 720p/) });
    expect(await failure(provider.submit(job({ model: 'stability.sd3-large-v1:0' })))).toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/does not know the input of Bedrock model/) });
    expect(stack.bedrock.stats.submitsReceived).toBe(before);
  });

  it('knows nothing of callbacks', async () => {
    await expect(provider.parseCallback()).rejects.toMatchObject({ kind: 'rejected' });
  });
});

describe('Luma Ray2 input', () => {
  it('takes 9 seconds, every ratio the gateway knows, and 720p by default', () => {
    expect(bedrockModelInput(job({ duration: 9, aspectRatio: '21:9' }))).toEqual({ prompt: 'a paper boat in the rain', aspect_ratio: '21:9', duration: '9s', resolution: '720p', loop: false });
  });
});

describe('classifying SDK errors', () => {
  const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
  const submit = (e: unknown) => classifyBedrockError(e, 'submit', 1000).kind;

  it('our credentials, quotas and the service itself: unavailable; a conflict on our token: ambiguous', () => {
    expect(submit(new AccessDeniedException({ message: "You don't have access to the model with the specified model ID.", ...meta(403) }))).toBe('unavailable');
    expect(submit(new ServiceQuotaExceededException({ message: 'quota', ...meta(400) }))).toBe('unavailable');
    expect(submit(new InternalServerException({ message: 'boom', ...meta(500) }))).toBe('unavailable');
    expect(submit(new ConflictException({ message: 'token in use', ...meta(400) }))).toBe('ambiguous');
    expect(submit(new ValidationException({ message: 'Malformed input request', ...meta(400) }))).toBe('rejected');
  });

  it("a proxy's 502 or 504, a dropped connection or a timeout after sending: ambiguous; the same on a read: unavailable", () => {
    const proxy = Object.assign(new Error('Bad Gateway'), { name: 'Unknown', $fault: 'server', ...meta(502) });
    expect(submit(proxy)).toBe('ambiguous');
    expect(submit(Object.assign(new Error('Gateway Timeout'), { name: 'Unknown', $fault: 'server', ...meta(504) }))).toBe('ambiguous');
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(submit(reset)).toBe('ambiguous');
    expect(submit(Object.assign(new Error('Stream timed out'), { name: 'TimeoutError' }))).toBe('ambiguous');
    expect(classifyBedrockError(reset, 'read', 1000).kind).toBe('unavailable');
    expect(classifyBedrockError(proxy, 'read', 1000).kind).toBe('unavailable');
    expect(submit(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }))).toBe('unavailable');
  });

  it('findJob that cannot see every invocation since the submit is not sure, so it says unavailable rather than none', async () => {
    const mock = mockClient(BedrockRuntimeClient);
    try {
      mock.on(ListAsyncInvokesCommand).resolves({ asyncInvokeSummaries: [{ invocationArn: 'arn:x', clientRequestToken: 'other', status: 'InProgress', submitTime: new Date(), modelArn: 'm', outputDataConfig: undefined }], nextToken: 'more' });
      const p = new BedrockProvider({ name: 'aws', region: 'us-west-2', bucket: 'gateway-videos', timeoutMs: 1000, credentials });
      await expect(p.findJob(job(), Date.now())).rejects.toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/could not make sure/) });
      expect(mock.commandCalls(ListAsyncInvokesCommand)).toHaveLength(10);
      expect(mock.commandCalls(ListAsyncInvokesCommand)[1]!.args[0].input).toMatchObject({ nextToken: 'more', maxResults: 1000, sortBy: 'SubmissionTime' });
    } finally {
      mock.restore();
    }
  });
});
