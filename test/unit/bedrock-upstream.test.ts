import { createHash } from 'node:crypto';
import {
  BedrockRuntimeClient,
  GetAsyncInvokeCommand,
  ListAsyncInvokesCommand,
  ResourceNotFoundException,
  StartAsyncInvokeCommand,
  ThrottlingException,
  ValidationException,
  type StartAsyncInvokeCommandInput,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startBedrockStack } from '../support/bedrock-stack';

/**
 * The simulated Bedrock runtime, driven by the real `BedrockRuntimeClient` (endpoint
 * override), so the simulator cannot drift from the API the SDK speaks.
 */
let stack: Awaited<ReturnType<typeof startBedrockStack>>;
let client: BedrockRuntimeClient;

beforeAll(async () => {
  stack = await startBedrockStack({ renderMs: 150 });
  client = new BedrockRuntimeClient({
    region: 'us-west-2',
    endpoint: stack.bedrock.url,
    credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await stack.close();
});

beforeEach(() => stack.bedrock.setFaults({}));

const start = (prompt: string, extra: Partial<StartAsyncInvokeCommandInput> = {}) =>
  client.send(
    new StartAsyncInvokeCommand({
      modelId: 'luma.ray-v2:0',
      modelInput: { prompt, aspect_ratio: '16:9', duration: '5s', resolution: '720p', loop: false },
      outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${stack.s3.bucket}/bedrock/task-1/` } },
      ...extra,
    }),
  );

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const get = (invocationArn: string) => client.send(new GetAsyncInvokeCommand({ invocationArn }));

describe('the simulated Bedrock runtime, through the real SDK client', () => {
  it('renders a job: InProgress, then Completed with output.mp4 in the invocation folder of the embedded S3', async () => {
    const { invocationArn } = await start('a lighthouse at dusk');
    expect(invocationArn).toMatch(/^arn:aws:bedrock:us-west-2:\d{12}:async-invoke\/[a-z0-9]+$/);
    const first = await get(invocationArn!);
    expect(first.status).toBe('InProgress');
    expect(first.submitTime).toBeInstanceOf(Date);
    expect(first.modelArn).toBe('arn:aws:bedrock:us-west-2::foundation-model/luma.ray-v2:0');

    const done = await until(() => get(invocationArn!), (v) => v.status !== 'InProgress');
    expect(done.status).toBe('Completed');
    expect(done.endTime).toBeInstanceOf(Date);
    const id = invocationArn!.split('/').pop();
    const folder = done.outputDataConfig!.s3OutputDataConfig!.s3Uri!;
    expect(folder).toBe(`s3://${stack.s3.bucket}/bedrock/task-1/${id}`);

    const bytes = await stack.s3.read(`bedrock/task-1/${id}/output.mp4`);
    expect(bytes!.toString('latin1', 4, 8)).toBe('ftyp');
    expect(createHash('sha256').update(bytes!).digest('hex')).toBe(stack.bedrock.expectedSha256(invocationArn!));
  });

  it('a repeated clientRequestToken returns the first invocation and makes no second job', async () => {
    const before = stack.bedrock.invocations.size;
    const a = await start('the same task twice', { clientRequestToken: 'task-01abc' });
    const b = await start('the same task twice', { clientRequestToken: 'task-01abc' });
    expect(b.invocationArn).toBe(a.invocationArn);
    expect(stack.bedrock.invocations.size).toBe(before + 1);
  });

  it('lists invocations with their tokens, filtered by submit time, a page at a time', async () => {
    const since = new Date(Date.now() - 1000);
    const mine = await start('listed', { clientRequestToken: 'task-listed' });
    const page1 = await client.send(new ListAsyncInvokesCommand({ submitTimeAfter: since, maxResults: 1, sortOrder: 'Ascending', sortBy: 'SubmissionTime' }));
    expect(page1.asyncInvokeSummaries).toHaveLength(1);
    const all = [...page1.asyncInvokeSummaries!];
    let next = page1.nextToken;
    while (next) {
      const page = await client.send(new ListAsyncInvokesCommand({ submitTimeAfter: since, maxResults: 1, sortOrder: 'Ascending', nextToken: next }));
      all.push(...page.asyncInvokeSummaries!);
      next = page.nextToken;
    }
    expect(all.find((s) => s.clientRequestToken === 'task-listed')?.invocationArn).toBe(mine.invocationArn);
    const later = await client.send(new ListAsyncInvokesCommand({ submitTimeAfter: new Date(Date.now() + 60_000) }));
    expect(later.asyncInvokeSummaries).toEqual([]);
  });

  it('answers content filtering, throttling, a retired model and an unknown one with the modelled exceptions', async () => {
    const refused = await start('a forbidden scene sim:reject').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ValidationException);
    expect((refused as Error).message).toMatch(/blocked by our content filters/);
    stack.bedrock.setFaults({ submit: '429' });
    const throttled = await start('busy').catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(ThrottlingException);
    expect((throttled as ThrottlingException).$metadata.httpStatusCode).toBe(429);
    stack.bedrock.setFaults({});
    const retired = await start('old', { modelId: 'amazon.nova-reel-v1:1' }).catch((e: unknown) => e);
    expect(retired).toBeInstanceOf(ResourceNotFoundException);
    expect((retired as Error).message).toMatch(/end of its life/);
    const unknown = await start('x', { modelId: 'luma.ray-v9:0' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ValidationException);
    expect((unknown as Error).message).toBe('The provided model identifier is invalid.');
  });

  it("checks Luma Ray2's documented input", async () => {
    const bad = await client
      .send(
        new StartAsyncInvokeCommand({
          modelId: 'luma.ray-v2:0',
          modelInput: { prompt: 'p', duration: '10s' },
          outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${stack.s3.bucket}/bedrock/t/` } },
        }),
      )
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationException);
    expect((bad as Error).message).toMatch(/#\/duration: "10s" is not a valid enum value/);
    const extra = await client
      .send(new StartAsyncInvokeCommand({ modelId: 'luma.ray-v2:0', modelInput: { prompt: 'p', seconds: 5 }, outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${stack.s3.bucket}/b/` } } }))
      .catch((e: unknown) => e);
    expect((extra as Error).message).toMatch(/extraneous key \[seconds\]/);
  });

  it('fails a render with a failureMessage, reports an unknown state word while rendering, and fails polls on request', async () => {
    const failed = await start('doomed sim:fail');
    const f = await until(() => get(failed.invocationArn!), (v) => v.status !== 'InProgress');
    expect(f).toMatchObject({ status: 'Failed', failureMessage: expect.stringMatching(/could not be generated/) });

    const weird = await start('odd sim:state=weird sim:render=stall');
    expect((await get(weird.invocationArn!)).status).toBe('queued_for_gpu');

    const lost = await start('lost sim:poll=404');
    expect(await get(lost.invocationArn!).catch((e: unknown) => e)).toBeInstanceOf(ResourceNotFoundException);
  });

  it('writes a web page instead of a video, or nothing at all, on request', async () => {
    const page = await start('page sim:not-video');
    const p = await until(() => get(page.invocationArn!), (v) => v.status !== 'InProgress');
    const bytes = await stack.s3.read(`${p.outputDataConfig!.s3OutputDataConfig!.s3Uri!.replace(`s3://${stack.s3.bucket}/`, '')}/output.mp4`);
    expect(bytes!.toString()).toMatch(/^<!doctype html>/);

    const gone = await start('gone sim:video=gone');
    const g = await until(() => get(gone.invocationArn!), (v) => v.status !== 'InProgress');
    expect(g.status).toBe('Completed');
    expect(await stack.s3.read(`${g.outputDataConfig!.s3OutputDataConfig!.s3Uri!.replace(`s3://${stack.s3.bucket}/`, '')}/output.mp4`)).toBeUndefined();
  });

  it('a stalled submit makes no job and is ended by the client', async () => {
    const before = stack.bedrock.invocations.size;
    const stalled = await client.send(
      new StartAsyncInvokeCommand({ modelId: 'luma.ray-v2:0', modelInput: { prompt: 'wait sim:submit=stall' }, outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${stack.s3.bucket}/b/` } } }),
      { abortSignal: AbortSignal.timeout(200) },
    ).catch((e: unknown) => e);
    expect((stalled as Error).name).toBe('AbortError');
    expect(stack.bedrock.invocations.size).toBe(before);
  });
});
