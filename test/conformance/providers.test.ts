import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeIdleConnections, localPolicy, openGet } from '../../lambdas/shared/outbound';
import { UpstreamError, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from '../../lambdas/shared/providers/provider';
import { videoHeaders } from '../../lambdas/shared/providers/upstream-keys';
import type { SimulatorUnderTest } from './subject';
import { subjects } from './subjects';

/**
 * One suite for every provider kind: each adapter against its own simulator, through the
 * interface the gateway uses. A kind is proven by adding its subject to `subjects.ts`.
 */

const timeoutMs = 800;
const renderMs = 400;

interface Arrival {
  body: unknown;
  rawBody: string;
  headers: Record<string, string | undefined>;
}

/** Our callback endpoint, as an upstream that calls back would reach it: one path per task. */
const arrivals = new Map<string, Arrival[]>();
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      body = undefined;
    }
    const taskId = decodeURIComponent((req.url ?? '').split('?')[0]!.split('/').pop() ?? '');
    arrivals.set(taskId, [...(arrivals.get(taskId) ?? []), { body, rawBody, headers: flatten(req.headers) }]);
    res.writeHead(204).end();
  });
});
let receiverUrl = '';

const flatten = (headers: IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  closeIdleConnections();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamError);
    return error as UpstreamError;
  }
  throw new Error('expected an UpstreamError');
}

/** Every status seen while polling, until `done` holds for one (or the time runs out). */
async function pollUntil(provider: UpstreamProvider, id: string, done: (s: UpstreamStatus) => boolean, ms = 8000): Promise<UpstreamStatus[]> {
  const seen: UpstreamStatus[] = [];
  const until = Date.now() + ms;
  for (;;) {
    const status = await provider.status(id);
    seen.push(status);
    if (done(status)) return seen;
    if (Date.now() > until) throw new Error(`job ${id} never got there; last status ${JSON.stringify(status)}`);
    await sleep(40);
  }
}

const finished = (s: UpstreamStatus) => s.phase === 'succeeded' || s.phase === 'failed';

interface Download {
  status: number;
  contentType: string;
  bytes: Buffer;
  /** Set when the body broke off (a truncated or stalled transfer). */
  error?: string;
}

/** The video a status names, fetched as the archive does: through the outbound guard, with the upstream's video headers. */
async function download(provider: UpstreamProvider, sim: SimulatorUnderTest, videoUrl: string): Promise<Download> {
  if (!/^https?:/.test(videoUrl)) {
    if (!sim.readVideo) throw new Error(`the subject gives no way to read ${videoUrl}`);
    return { status: 200, ...(await sim.readVideo(videoUrl)) };
  }
  const upstream = { name: provider.name, kind: provider.kind, baseUrl: sim.url, apiKey: sim.apiKey };
  const headers = (await videoHeaders(upstream, videoUrl, { UPSTREAM_SECRET_ARNS: {} })) ?? {};
  const response = await openGet(videoUrl, { policy: localPolicy, headers, timeoutMs: 2000 });
  const chunks: Buffer[] = [];
  let error: string | undefined;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) chunks.push(chunk);
  } catch (e) {
    error = (e as Error).message;
  }
  return { status: response.status, contentType: String(response.headers['content-type'] ?? ''), bytes: Buffer.concat(chunks), error };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe.each(subjects)('the $kind provider against its simulator', (subject) => {
  let sim: SimulatorUnderTest;
  let provider: UpstreamProvider;

  beforeEach(async () => {
    ({ sim, provider } = await subject.start({ timeoutMs, renderMs }));
  });

  afterEach(async () => {
    await sim.close();
  });

  const job = (prompt: string): UpstreamJob => {
    const taskId = `task_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    return {
      taskId,
      model: subject.model,
      prompt,
      aspectRatio: '16:9',
      duration: 5,
      imageUrls: [],
      characters: [],
      callbackUrl: `${receiverUrl}/callbacks/${taskId}`,
    };
  };

  /** A job that rendered to success, and the statuses seen on the way. */
  async function rendered(prompt = 'a lighthouse at dusk, waves below') {
    const { upstreamId } = await provider.submit(job(prompt));
    const statuses = await pollUntil(provider, upstreamId, finished);
    return { upstreamId, statuses, final: statuses.at(-1)! };
  }

  it('submits a job and answers the id of exactly one job on the upstream', async () => {
    const { upstreamId } = await provider.submit(job('a paper boat on a puddle'));
    expect(upstreamId).toMatch(/\S/);
    expect(sim.jobIds()).toEqual([upstreamId]);
  });

  it('reports progress while rendering, rising, then success with progress 100', async () => {
    const { statuses, final } = await rendered();
    const before = statuses.slice(0, -1);
    expect(before.length).toBeGreaterThan(0);
    for (const s of before) {
      expect(['pending', 'running']).toContain(s.phase);
      expect(s.progress).toBeLessThan(100);
    }
    const progress = statuses.map((s) => s.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(final).toMatchObject({ phase: 'succeeded', progress: 100 });
    expect(final.videoUrl).toBeTruthy();
  });

  it('names a video whose bytes are exactly the ones the simulator rendered', async () => {
    const { upstreamId, final } = await rendered();
    const video = await download(provider, sim, final.videoUrl!);
    expect(video.status).toBe(200);
    expect(video.error).toBeUndefined();
    expect(video.bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(sha256(video.bytes)).toBe(sim.expectedSha256(upstreamId));
  });

  it('passes on a content refusal as rejected, with the upstream’s reason, and makes no job', async () => {
    const error = await failure(provider.submit(job('something forbidden sim:reject')));
    expect(error.kind).toBe('rejected');
    // 400 in most dialects; fal and Replicate refuse input with 422.
    expect([400, 422]).toContain(error.status);
    expect(error.message).toMatch(/^upstream answered 4\d\d: \S/);
    expect(sim.jobCount()).toBe(0);
  });

  it('takes a 429 as unavailable and keeps its Retry-After', async () => {
    const error = await failure(provider.submit(job('busy hour sim:429=7')));
    expect(error).toMatchObject({ kind: 'unavailable', status: 429, retryAfterSeconds: 7 });
    expect(sim.jobCount()).toBe(0);
  });

  it.each(['500', '503'])('takes the upstream’s own %s as unavailable', async (status) => {
    const error = await failure(provider.submit(job(`outage sim:${status}`)));
    expect(error).toMatchObject({ kind: 'unavailable', status: Number(status) });
    expect(sim.jobCount()).toBe(0);
  });

  it('applies server-wide faults, and works again once they are cleared', async () => {
    sim.setFaults({ submit: '503' });
    expect((await failure(provider.submit(job('first try')))).kind).toBe('unavailable');
    sim.setFaults({});
    const { upstreamId } = await provider.submit(job('second try'));
    expect(sim.jobIds()).toEqual([upstreamId]);
  });

  it('takes a submit that is never answered as ambiguous, within the timeout', async () => {
    const started = Date.now();
    const sent = job('a slow day sim:submit=stall');
    const error = await failure(provider.submit(sent));
    expect(error.kind).toBe('ambiguous');
    expect(error.message).toBe(`upstream did not answer within ${timeoutMs} ms`);
    expect(Date.now() - started).toBeLessThan(timeoutMs + 1500);
    if (provider.findJob) expect(await provider.findJob(sent, started)).toBeNull();
  });

  it.each([
    ['accept-drop', 'the connection drops'],
    ['accept-504', 'a proxy answers 504'],
  ])('takes a job made before %s as ambiguous, and finds that job where the dialect can', async (fault) => {
    const submittedAt = Date.now();
    const sent = job(`an old mill by a river sim:submit=${fault}`);
    const error = await failure(provider.submit(sent));
    expect(error.kind).toBe('ambiguous');
    expect(sim.jobCount()).toBe(1);
    if (provider.findJob) expect(await provider.findJob(sent, submittedAt)).toBe(sim.jobIds()[0]);
  });

  it('reports a failed render as failed, with the upstream’s message and no video', async () => {
    const { final } = await rendered('a melting clock sim:fail');
    expect(final.phase).toBe('failed');
    expect(final.message).toMatch(/\S/);
    expect(final.videoUrl).toBeUndefined();
  });

  it('takes a state word it does not know as still running, keeping the word', async () => {
    const { statuses, final } = await rendered('a windmill sim:state=weird');
    expect(statuses.some((s) => s.state === 'queued_for_gpu' && s.phase === 'running')).toBe(true);
    expect(final.phase).toBe('succeeded');
  });

  it.each(['500', '404'])('takes a poll answered %s as unavailable, not as a verdict on the job', async (fault) => {
    const { upstreamId } = await provider.submit(job(`a kite sim:poll=${fault}`));
    const error = await failure(provider.status(upstreamId));
    expect(error.kind).toBe('unavailable');
  });

  it('names a truncated video that the download shows to be short', async () => {
    const { upstreamId, final } = await rendered('a train sim:truncated');
    const video = await download(provider, sim, final.videoUrl!);
    // An object in our bucket has no transfer to break off: it is simply short.
    if (/^https?:/.test(final.videoUrl!)) expect(video.error).toMatch(/closed the connection before the response was complete/);
    expect(sha256(video.bytes)).not.toBe(sim.expectedSha256(upstreamId));
  });

  it('names a result that is no video, which the download shows', async () => {
    const { final } = await rendered('a bridge sim:not-video');
    const video = await download(provider, sim, final.videoUrl!);
    expect(video.contentType).not.toMatch(/^video\//);
    expect(video.bytes.subarray(4, 8).toString('latin1')).not.toBe('ftyp');
  });

  it('rejects a callback body that is not its dialect’s', async () => {
    const error = await failure(provider.parseCallback({ body: { hello: 'world' }, rawBody: '{"hello":"world"}', headers: {} }));
    expect(error.kind).toBe('rejected');
  });

  it('calls back with progress and the final status as polling shows them, or never if it is poll-only', async () => {
      const sent = job('a hot air balloon');
      const { upstreamId } = await provider.submit(sent);
      const polled = await pollUntil(provider, upstreamId, finished);
      await sleep(200);
      const received = arrivals.get(sent.taskId) ?? [];
      if (!provider.callsBack) {
        expect(received).toEqual([]);
        return;
      }
      // The route hands on the job the task holds: some dialects confirm a callback by asking about it.
      const parsed = await Promise.all(received.map((r) => provider.parseCallback({ ...r, upstreamId })));
      if (subject.finalCallbackOnly) expect(parsed.map((s) => s.phase)).toEqual(['succeeded']);
      else expect(parsed.some((s) => s.phase === 'running' && s.progress > 0 && s.progress < 100)).toBe(true);
      const last = parsed.at(-1)!;
      expect(last).toMatchObject({ phase: 'succeeded', progress: 100, videoUrl: polled.at(-1)!.videoUrl });
  });
});
