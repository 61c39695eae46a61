import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main as keys } from '../../bin/keys';
import { hashKey, keyId } from '../../lambdas/shared/api-keys';
import { freePort, startNpmStart, stopNpmStart, type StartedGateway } from './local-start';

/** Limits and usage are in the table: `npm start` stopped and started again keeps both. */

const dataDir = mkdtempSync(join(tmpdir(), 'vtg-usage-restart-'));
let gateway: StartedGateway | undefined;
let port: number;
let key: string;

afterAll(async () => {
  gateway?.proc.kill('SIGKILL');
  await gateway?.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...init.headers } });
const submit = (prompt: string, duration = 10) => api('/v1/videos/generations', { method: 'POST', body: JSON.stringify({ model: 'sora-2', prompt, duration }) });

async function start() {
  gateway = await startNpmStart(dataDir, { PORT: String(port), KEY_CACHE_SECONDS: '0' });
  key = /Local API key: (\S+)/.exec(gateway.output())![1]!;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${gateway?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('usage and limits across a restart of npm start', () => {
  it('the key keeps its limits and its usage; the open task still counts against its concurrency', async () => {
    port = await freePort();
    await start();
    let out = '';
    const code = await keys(['limits', keyId(hashKey(key)), '--concurrent', '1', '--data-dir', dataDir], { out: (t) => void (out += t), err: (t) => void (out += t) });
    expect(code, out).toBe(0);
    const { id } = (await (await submit('before the restart', 15)).json()) as { id: string };
    await until('the task to succeed', async () => ((await (await api(`/v1/videos/generations/${id}`)).json()) as any).status === 'succeeded' || undefined);
    const open = await submit('still rendering sim:render=stall');
    expect(open.status).toBe(200);
    const before = await until('the usage settled', async () => {
      const usage = (await (await api('/v1/usage')).json()) as any;
      return usage.totals.succeeded === 1 ? usage : undefined;
    });
    expect(before.totals).toMatchObject({ tasks: 2, succeeded: 1, requested_seconds: 25, delivered_seconds: 15 });
    expect(before.in_use).toEqual({ open_tasks: 1, seconds_today: 25, seconds_this_month: 25 });

    await stopNpmStart(gateway!);
    await start();
    expect((await (await api('/v1/usage')).json()) as any).toEqual({ ...before, end: expect.any(Number) });
    const refused = await submit('after the restart');
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error.code).toBe('concurrency_limit');
  }, 120_000);
});
