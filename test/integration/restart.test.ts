import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHookReceiver, type HookReceiver } from './helpers';
import { freePort, startNpmStart, type StartedGateway } from './local-start';

/**
 * `npm start` killed with SIGKILL at the worst moments and started again on the same data
 * directory: every task still finishes, once, within a minute or two.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'vtg-restart-'));
const uploadsDir = join(dataDir, 's3', 'video-task-gateway-videos', '._S3rver_uploads');
let gateway: StartedGateway | undefined;
let hooks: HookReceiver;
let port: number;
let key: string;

afterAll(async () => {
  gateway?.proc.kill('SIGKILL');
  await gateway?.exited;
  await hooks?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const until = async <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${gateway?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers } });

async function submit(prompt: string, model = 'sora-2'): Promise<string> {
  const res = await api('/v1/videos/generations', {
    method: 'POST',
    body: JSON.stringify({ model, prompt, callback_url: hooks.url }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
}

const view = async (id: string) => (await (await api(`/v1/videos/generations/${id}`)).json()) as any;

async function start(env: Record<string, string> = {}): Promise<number> {
  gateway = await startNpmStart(dataDir, { PORT: String(port), SIM_RENDER_MS: '300', ...env });
  key = /Local API key: (\S+)/.exec(gateway.output())![1]!;
  return Date.now();
}

async function kill(): Promise<void> {
  gateway!.proc.kill('SIGKILL');
  await gateway!.exited;
  gateway = undefined;
}

/** Waits for the task to succeed; returns how long after `since` it did. */
async function succeeded(id: string, since: number): Promise<number> {
  await until(`${id} to succeed`, async () => {
    const v = await view(id);
    expect(v.status, JSON.stringify(v)).not.toBe('failed');
    return v.status === 'succeeded' ? v : undefined;
  });
  return Date.now() - since;
}

const journal = (name: string) => (existsSync(join(dataDir, 'upstreams', `${name}.jsonl`)) ? readFileSync(join(dataDir, 'upstreams', `${name}.jsonl`), 'utf8') : '');
const jobLines = () => journal('duomi');
const uploadedParts = () => (existsSync(uploadsDir) ? readdirSync(uploadsDir, { recursive: true }).filter((f) => /(^|\/)\d+$/.test(String(f))) : []);
const recovery: Record<string, number> = {};

describe('npm start killed and started again on the same data directory', () => {
  it('a task rendering when the process died finishes after the restart', async () => {
    hooks = await startHookReceiver();
    port = await freePort();
    await start();
    const id = await submit('a slow render sim:render=8000');
    // The upstream has the job (its journal says so) and is rendering it.
    await until('the upstream to take the job', () => (jobLines().includes(`"callback_url":"http://127.0.0.1:${port}/callbacks/upstream/${id}`) ? true : undefined));
    await kill();

    const restarted = await start();
    recovery.render = await succeeded(id, restarted);
  }, 180_000);

  it('a task whose video was half downloaded (parts already in S3) when the process died is archived again from the start', async () => {
    const id = await submit('a big video sim:bytes=20M sim:rate=5M');
    // lib-storage sends parts of 8 MiB: one is in the embedded S3, the download goes on.
    await until('a multipart part in the embedded S3', () => (uploadedParts().length > 0 ? true : undefined));
    expect((await view(id)).status).toBe('in_progress');
    await kill();
    expect(uploadedParts().length).toBeGreaterThan(0);

    const restarted = await start();
    expect(uploadedParts()).toEqual([]); // the dead worker's parts are gone
    recovery.download = await succeeded(id, restarted);
    const v = await view(id);
    expect(v.video.bytes).toBe(20 * 2 ** 20);
    const video = Buffer.from(await (await fetch(v.data.videos[0].url)).arrayBuffer());
    expect(video.length).toBe(20 * 2 ** 20);
  }, 180_000);

  it('a task whose video was stored when the process died (object and S3 event there, task not yet marked) succeeds from the stored object', async () => {
    await kill();
    await start({ LOCAL_CRASH_AFTER_VIDEO_STORED: '1' });
    let died = false;
    void gateway!.exited.then(() => (died = true));
    const id = await submit('stored, then the lights went out');
    // The drill: the process kills itself right after the upload, before the task is marked.
    await until('the process to die right after the upload', () => (died ? true : undefined), 60_000);
    gateway = undefined;
    const eventsOf = () => readFileSync(join(dataDir, 's3-events.jsonl'), 'utf8').split('\n').filter((l) => l.includes(`videos/${id}.mp4`));
    expect(eventsOf()).toHaveLength(1);

    const restarted = await start();
    recovery.stored = await succeeded(id, restarted);
    // Finished from the object it found, without a second download or a second S3 event.
    await until('the archive worker to find the stored video', () => (/video found stored by an earlier attempt/.test(gateway!.output()) ? true : undefined), 30_000);
    expect(gateway!.output()).not.toMatch(new RegExp(`"message":"video archived"[^\n]*${id}`));
    expect(eventsOf()).toHaveLength(1);
    expect((await view(id)).video.sha256).toMatch(/^[0-9a-f]{64}$/);
  }, 180_000);

  it('a task rendering on a poll-only demo simulator (OpenAI-compatible) when the process died finishes after the restart', async () => {
    const id = await submit('a slow demo render sim:render=8000', 'seedance-2.0');
    // The simulator has the job (its journal says so) and the gateway is polling it.
    await until('the demo simulator to take the job', () => (journal('openai').includes('a slow demo render') ? true : undefined));
    await until('the task to be submitted', async () => ((await view(id)).status === 'in_progress' ? true : undefined));
    // And its next poll is in the local queue's saved state, so this drill is about the simulator alone.
    await until('the poll of the task in the saved queues', () => (readFileSync(join(dataDir, 'queues', 'sqs.json'), 'utf8').includes(id) ? true : undefined));
    await kill();

    const restarted = await start();
    recovery.demoRender = await succeeded(id, restarted);
  }, 180_000);

  it('each task succeeded once: one S3 event and one webhook delivery id per task, and no parts left', async () => {
    const list = (await (await api('/v1/videos/generations?limit=10')).json()) as { data: { id: string; status: string }[] };
    expect(list.data).toHaveLength(4);
    const events = readFileSync(join(dataDir, 's3-events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).Records[0].s3.object.key as string);
    for (const task of list.data) {
      expect(task.status).toBe('succeeded');
      expect(events.filter((k) => k === `videos/${task.id}.mp4`), `S3 events of ${task.id}`).toHaveLength(1);
      await until(`the webhook of ${task.id}`, () => (hooks.deliveries.some((d) => JSON.parse(d.body).id === task.id) ? true : undefined), 30_000);
      const ids = new Set(hooks.deliveries.filter((d) => JSON.parse(d.body).id === task.id).map((d) => d.headers['webhook-id']));
      expect([...ids]).toEqual([`${task.id}.succeeded`]);
    }
    expect(uploadedParts()).toEqual([]);
    console.info(`recovery after restart (ms): ${JSON.stringify(recovery)}`);
  }, 60_000);
});
