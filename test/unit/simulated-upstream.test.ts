import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, get, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { minimumVideoBytes, videoSha256 } from '../../local/mp4';
import {
  parseFaultTokens,
  startSimulatedUpstream,
  type DuomiTaskView,
  type SimulatedUpstream,
  type SimulatedUpstreamOptions,
} from '../../local/simulated-upstream';

const RENDER_MS = 100;

/** A tiny HTTP server that records every callback POSTed to it. */
class CallbackReceiver {
  readonly received: { path: string; body: DuomiTaskView }[] = [];
  private waiters: (() => void)[] = [];
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as DuomiTaskView });
      res.end('ok');
      for (const wake of this.waiters.splice(0)) wake();
    });
  });
  url = '';

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  for(id: string): DuomiTaskView[] {
    return this.received.filter((r) => r.body.id === id).map((r) => r.body);
  }

  async waitFor(id: string, count: number, timeoutMs = 2000): Promise<DuomiTaskView[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.for(id).length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} callbacks for ${id}, got ${this.for(id).length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.for(id);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function submit(
  up: SimulatedUpstream,
  body: Record<string, unknown>,
  headers: Record<string, string> = { authorization: 'Bearer sk-test' },
): Promise<Response> {
  return fetch(`${up.url}/v1/videos/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function submitOk(up: SimulatedUpstream, prompt: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await submit(up, { model: 'sora-2', prompt, ...extra });
  expect(res.status).toBe(200);
  const { id } = (await res.json()) as { id: string };
  return id;
}

async function status(up: SimulatedUpstream, id: string): Promise<DuomiTaskView> {
  const res = await fetch(`${up.url}/v1/videos/tasks/${id}`, { headers: { authorization: 'sk-test' } });
  expect(res.status).toBe(200);
  return (await res.json()) as DuomiTaskView;
}

async function waitForState(up: SimulatedUpstream, id: string, state: string, timeoutMs = 2000): Promise<DuomiTaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await status(up, id);
    if (view.state === state) return view;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${view.state}, wanted ${state}`);
    await sleep(10);
  }
}

/** A plain node:http GET that reports how the body ended, even when the server cuts it short. */
function rawGet(url: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }),
      );
    }).on('error', reject);
  });
}

const receiver = new CallbackReceiver();
let upstreams: SimulatedUpstream[] = [];

async function start(options: SimulatedUpstreamOptions = {}): Promise<SimulatedUpstream> {
  const up = await startSimulatedUpstream({ renderMs: RENDER_MS, ...options });
  upstreams.push(up);
  return up;
}

beforeAll(() => receiver.start());
afterAll(() => receiver.close());
afterEach(async () => {
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

describe('simulated upstream: the happy path', () => {
  it('renders a task from pending through running to succeeded, calling back half-way and at the end', async () => {
    // Pending for the first fifth of the render: long enough to be read on a busy machine.
    const up = await start({ renderMs: 2000 });
    const id = await submitOk(up, 'a cat on a skateboard', { callback_url: `${receiver.url}/cb/1?token=t` });
    expect((await status(up, id)).state).toBe('pending');

    const running = await waitForState(up, id, 'running');
    expect(running.data.videos).toEqual([]);
    const done = await waitForState(up, id, 'succeeded');
    expect(done).toMatchObject({ id, state: 'succeeded', progress: 100, message: '' });
    expect(done.data.videos[0]!.url).toBe(`${up.url}/files/${id}.mp4`);

    const callbacks = await receiver.waitFor(id, 2);
    expect(callbacks.map((c) => c.state)).toEqual(['running', 'succeeded']);
    expect(callbacks[0]!.progress).toBeGreaterThan(0);
    expect(callbacks[0]!.progress).toBeLessThan(100);
    expect(callbacks[1]).toEqual(done);
    expect(receiver.received.find((r) => r.body.id === id)!.path).toBe('/cb/1?token=t');
  });

  it('serves the finished video as a real MP4 whose bytes match the pure sha256', async () => {
    const up = await start();
    const id = await submitOk(up, 'a dog');
    const done = await waitForState(up, id, 'succeeded');
    const video = await rawGet(done.data.videos[0]!.url);
    expect(video.status).toBe(200);
    expect(video.headers['content-type']).toBe('video/mp4');
    expect(Number(video.headers['content-length'])).toBe(minimumVideoBytes({ taskId: id }));
    expect(video.complete).toBe(true);
    expect(video.body.toString('latin1', 4, 8)).toBe('ftyp');
    expect(createHash('sha256').update(video.body).digest('hex')).toBe(videoSha256({ taskId: id }));
    expect(up.stats).toMatchObject({ videoDownloadsStarted: 1, videoDownloadsCompleted: 1 });
  });

  it('answers a byte range with 206 and the matching slice', async () => {
    const up = await start();
    const id = await submitOk(up, 'ranges sim:bytes=100000');
    const done = await waitForState(up, id, 'succeeded');
    const res = await fetch(done.data.videos[0]!.url, { headers: { range: 'bytes=10-19' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 10-19/100000');
    expect((await res.arrayBuffer()).byteLength).toBe(10);
  });

  it('records each task and counts requests', async () => {
    const up = await start();
    const body = { model: 'sora-2-pro', prompt: 'a boat', duration: 25, aspect_ratio: '9:16', image_urls: ['https://x/y.jpg'] };
    const res = await submit(up, body, { authorization: 'Bearer sk-live' });
    const { id } = (await res.json()) as { id: string };
    const task = up.tasks.get(id)!;
    expect(task).toMatchObject({ id, state: 'pending', prompt: 'a boat', model: 'sora-2-pro', authorization: 'Bearer sk-live', body });
    expect(task.callback_url).toBeUndefined();
    await submit(up, { model: 'sora-2', prompt: 'no sim:reject' });
    expect(up.stats).toMatchObject({ submitsReceived: 2, submitsAccepted: 1, submitsRefused: 1 });
  });

  it('renders several instances side by side without sharing tasks', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    const id = await submitOk(a!, 'only in a');
    expect(a!.tasks.has(id)).toBe(true);
    expect(b!.tasks.has(id)).toBe(false);
    expect((await fetch(`${b!.url}/v1/videos/tasks/${id}`)).status).toBe(404);
  });
});

describe('simulated upstream: requests it refuses', () => {
  it('requires the configured key, bare or as a Bearer token', async () => {
    const up = await start({ apiKey: 'sk-test' });
    expect((await submit(up, { model: 'sora-2', prompt: 'x' }, { authorization: 'sk-test' })).status).toBe(200);
    expect((await submit(up, { model: 'sora-2', prompt: 'x' }, { authorization: 'Bearer sk-test' })).status).toBe(200);
    for (const headers of [{ authorization: 'Bearer nope' }, {}] as Record<string, string>[]) {
      const res = await submit(up, { model: 'sora-2', prompt: 'x' }, headers);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/key/);
    }
    expect((await fetch(`${up.url}/v1/videos/tasks/whatever`)).status).toBe(401);
  });

  it('answers 400 JSON when model or prompt is missing or the body is not JSON', async () => {
    const up = await start();
    for (const body of [{ prompt: 'x' }, { model: 'sora-2' }, { model: 'sora-2', prompt: '  ' }]) {
      const res = await submit(up, body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/model|prompt/);
    }
    const bad = await fetch(`${up.url}/v1/videos/generations`, { method: 'POST', body: '{nope' });
    expect(bad.status).toBe(400);
  });

  it('answers 404 for an unknown task and an unknown route', async () => {
    const up = await start();
    expect((await fetch(`${up.url}/v1/videos/tasks/sim_missing`)).status).toBe(404);
    expect((await fetch(`${up.url}/files/sim_missing.mp4`)).status).toBe(404);
    expect((await fetch(`${up.url}/elsewhere`)).status).toBe(404);
  });
});

describe('simulated upstream: submit faults', () => {
  it('refuses a prompt by content policy with sim:reject', async () => {
    const up = await start();
    const res = await submit(up, { model: 'sora-2', prompt: 'a cat sim:reject' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: 'prompt violates content policy', code: 'content_policy' } });
    expect(up.tasks.size).toBe(0);
  });

  it('rate-limits with 429 and a Retry-After header', async () => {
    const up = await start();
    const res = await submit(up, { model: 'sora-2', prompt: 'sim:429=7 a cat' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect((await submit(up, { model: 'sora-2', prompt: 'sim:submit=429' })).headers.get('retry-after')).toBe('1');
  });

  it('fails with 500 or 503 JSON errors', async () => {
    const up = await start();
    for (const code of [500, 503]) {
      const res = await submit(up, { model: 'sora-2', prompt: `x sim:${code}` });
      expect(res.status).toBe(code);
      expect(await res.json()).toMatchObject({ error: { message: expect.any(String) } });
    }
  });

  it('holds a stalled submit open until the client gives up', async () => {
    const up = await start();
    const started = Date.now();
    const res = submit(up, { model: 'sora-2', prompt: 'x sim:submit=stall' }, {});
    await expect(Promise.race([res, sleep(300).then(() => 'still waiting')])).resolves.toBe('still waiting');
    await expect(
      fetch(`${up.url}/v1/videos/generations`, {
        method: 'POST',
        body: JSON.stringify({ model: 'sora-2', prompt: 'sim:submit=stall' }),
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    await up.close();
    await expect(res).rejects.toThrow();
  });

  it('applies server-wide faults set later, which a prompt token can switch off', async () => {
    const up = await start({ faults: { submit: '503' } });
    expect((await submit(up, { model: 'sora-2', prompt: 'x' })).status).toBe(503);
    expect((await submit(up, { model: 'sora-2', prompt: 'x sim:submit=ok' })).status).toBe(200);
    up.setFaults({ submit: 'reject' });
    expect((await submit(up, { model: 'sora-2', prompt: 'x' })).status).toBe(400);
    up.setFaults({});
    expect((await submit(up, { model: 'sora-2', prompt: 'x' })).status).toBe(200);
  });

  it('fails a seeded, repeatable share of submits and drops a share of callbacks', async () => {
    const outcomes = async (seed: number): Promise<string[]> => {
      const up = await start({ seed, failSubmitRate: 0.3, dropCallbackRate: 0.5, renderMs: 10_000 });
      const out: string[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await submit(up, { model: 'sora-2', prompt: `load ${i}` });
        if (res.status !== 200) out.push(String(res.status));
        else out.push(up.tasks.get(((await res.json()) as { id: string }).id)!.faults.callback ?? 'ok');
      }
      return out;
    };
    const first = await outcomes(42);
    expect(await outcomes(42)).toEqual(first);
    expect(new Set(first)).toEqual(new Set(['503', 'drop', 'ok']));
    expect(await outcomes(7)).not.toEqual(first);
  });
});

describe('simulated upstream: render faults', () => {
  it('ends a failed render in state error with a message, and calls back', async () => {
    const up = await start();
    const id = await submitOk(up, 'x sim:render=fail', { callback_url: `${receiver.url}/cb` });
    const failed = await waitForState(up, id, 'error');
    expect(failed.message).toMatch(/fail/);
    expect(failed.data.videos).toEqual([]);
    const callbacks = await receiver.waitFor(id, 2);
    expect(callbacks.at(-1)).toMatchObject({ state: 'error', message: failed.message });
    expect((await fetch(`${up.url}/files/${id}.mp4`)).status).toBe(404);
  });

  it('keeps a stalled render running forever, without a final callback', async () => {
    const up = await start();
    const id = await submitOk(up, 'x sim:render=stall', { callback_url: `${receiver.url}/cb` });
    await sleep(RENDER_MS * 3);
    const view = await status(up, id);
    expect(view.state).toBe('running');
    expect(view.progress).toBeLessThan(100);
    expect(receiver.for(id).map((c) => c.state)).toEqual(['running']);
  });

  it('takes the render time a prompt asks for', async () => {
    const up = await start({ renderMs: 10_000 });
    const id = await submitOk(up, 'x sim:render=50');
    await waitForState(up, id, 'succeeded', 1000);
  });

  it('reports an unknown state word mid-way, then succeeds', async () => {
    const up = await start({ renderMs: 200 });
    const id = await submitOk(up, 'x sim:state=weird', { callback_url: `${receiver.url}/cb` });
    await waitForState(up, id, 'queued_for_gpu');
    await waitForState(up, id, 'succeeded');
    expect((await receiver.waitFor(id, 2)).map((c) => c.state)).toEqual(['queued_for_gpu', 'succeeded']);
  });

  it('fails status polls of a task with sim:poll', async () => {
    const up = await start();
    const id = await submitOk(up, 'x sim:poll=500');
    expect((await fetch(`${up.url}/v1/videos/tasks/${id}`)).status).toBe(500);
  });
});

describe('simulated upstream: callback faults', () => {
  it('drops callbacks while the status stays available by polling', async () => {
    const up = await start();
    const id = await submitOk(up, 'x sim:callback=drop', { callback_url: `${receiver.url}/cb` });
    await waitForState(up, id, 'succeeded');
    await sleep(50);
    expect(receiver.for(id)).toEqual([]);
    expect(up.stats.callbacksSent).toBe(0);
  });

  it('repeats the final callback and then sends a stale running one', async () => {
    const up = await start();
    const id = await submitOk(up, 'x sim:duplicate', { callback_url: `${receiver.url}/cb` });
    const callbacks = await receiver.waitFor(id, 4);
    expect(callbacks.map((c) => c.state)).toEqual(['running', 'succeeded', 'succeeded', 'running']);
    expect(callbacks[1]).toEqual(callbacks[2]);
    expect(callbacks[3]!.data.videos).toEqual([]);
  });

  it('logs and ignores a callback receiver that is down', async () => {
    const logs: string[] = [];
    const up = await start({ log: (msg) => logs.push(msg), callbackTimeoutMs: 500 });
    const id = await submitOk(up, 'x', { callback_url: 'http://127.0.0.1:1/cb' });
    await waitForState(up, id, 'succeeded');
    await sleep(50);
    expect(up.stats.callbacksFailed).toBe(2);
    expect(logs).toContain('callback failed');
  });
});

describe('simulated upstream: video faults', () => {
  async function finishedVideo(up: SimulatedUpstream, prompt: string): Promise<{ id: string; url: string }> {
    const id = await submitOk(up, prompt);
    const done = await waitForState(up, id, 'succeeded');
    return { id, url: done.data.videos[0]!.url };
  }

  it('a truncated video ends before its declared length', async () => {
    const up = await start();
    const { url } = await finishedVideo(up, 'x sim:video=truncated sim:bytes=300000');
    const res = await rawGet(url);
    expect(res.status).toBe(200);
    expect(Number(res.headers['content-length'])).toBe(300_000);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBe(150_000);
    expect(up.stats.videoDownloadsCompleted).toBe(0);
  });

  it('answers an HTML page instead of a video with sim:not-video', async () => {
    const up = await start();
    const { url } = await finishedVideo(up, 'x sim:not-video');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toMatch(/<html>/);
  });

  it('serves an oversized video of the size given, or of the configured default', async () => {
    const up = await start({ oversizedBytes: 3 * 2 ** 20 });
    const given = await finishedVideo(up, 'x sim:video=oversized sim:bytes=2M');
    const head = await fetch(given.url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(2 * 2 ** 20));
    const byDefault = await finishedVideo(up, 'x sim:oversized');
    const res = await rawGet(byDefault.url);
    expect(res.body.length).toBe(3 * 2 ** 20);
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(videoSha256({ taskId: byDefault.id, bytes: 3 * 2 ** 20 }));
  });

  it('grows the video to sim:bytes', async () => {
    const up = await start();
    const { id, url } = await finishedVideo(up, 'x sim:bytes=123456');
    const res = await rawGet(url);
    expect(res.body.length).toBe(123_456);
    expect(up.tasks.get(id)!.video.bytes).toBe(123_456);
  });

  it('streams a video without Content-Length with sim:video=chunked', async () => {
    const up = await start();
    const { url } = await finishedVideo(up, 'x sim:video=chunked sim:bytes=200000');
    const res = await rawGet(url);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.body.length).toBe(200_000);
  });

  it('answers 404 for an expired video with sim:video=gone', async () => {
    const up = await start();
    const { url } = await finishedVideo(up, 'x sim:video=gone');
    expect((await fetch(url)).status).toBe(404);
  });

  it('stops sending a stalled video after the first chunk, until the server closes', async () => {
    const up = await start();
    const { url } = await finishedVideo(up, 'x sim:video=stall sim:bytes=1M');
    const res = rawGet(url);
    await sleep(200);
    await up.close();
    const got = await res;
    expect(got.complete).toBe(false);
    expect(got.body.length).toBe(64 * 1024);
  });
});

describe('simulated upstream: shutting down', () => {
  it('cancels pending renders and callbacks when closed', async () => {
    const up = await start();
    const id = await submitOk(up, 'x', { callback_url: `${receiver.url}/cb` });
    await up.close();
    await sleep(RENDER_MS * 2);
    expect(receiver.for(id)).toEqual([]);
    expect(up.tasks.get(id)!.state).not.toBe('succeeded');
  });
});

describe('prompt fault tokens', () => {
  it('reads names and values and reports the ones it does not know', () => {
    expect(parseFaultTokens('a cat sim:video=truncated sim:bytes=5M sim:render=250 sim:429=3 sim:state=weird sim:bogus sim:render=nope')).toEqual({
      faults: { video: 'truncated', bytes: 5 * 2 ** 20, renderMs: 250, submit: '429', retryAfter: 3, state: 'queued_for_gpu' },
      unknown: ['sim:bogus', 'sim:render=nope'],
    });
    expect(parseFaultTokens('no tokens here, not even xsim:fail').faults).toEqual({});
    expect(parseFaultTokens('sim:bytes=2G sim:drop sim:fail').faults).toEqual({ bytes: 2 * 2 ** 30, callback: 'drop', render: 'fail' });
  });
});
