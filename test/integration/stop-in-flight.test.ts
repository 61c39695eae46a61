import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startNpmStart, type StartedGateway } from './local-start';

const dataDir = mkdtempSync(join(tmpdir(), 'vtg-stop-'));
let gateway: StartedGateway | undefined;

afterAll(async () => {
  gateway?.proc.kill('SIGKILL');
  await gateway?.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Ctrl-C while submits are being handled', () => {
  it('answers each one with its task, exits 0 without an error, and the restarted gateway finishes every task', async () => {
    const port = await freePort();
    gateway = await startNpmStart(dataDir, { PORT: String(port) });
    const key = /Local API key: (\S+)/.exec(gateway.output())![1]!;
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });

    let stopping = false;
    let answeredWhileStopping = 0;
    const submits = Array.from({ length: 12 }, (_, n) =>
      api('/v1/videos/generations', { method: 'POST', body: JSON.stringify({ model: 'sora-2', prompt: `stopped mid-submit ${n}` }) }).then(
        async (res) => {
          if (stopping) answeredWhileStopping += 1;
          return { status: res.status, body: (await res.json()) as { id?: string; message?: string } };
        },
      ),
    );
    await Promise.race(submits);
    stopping = true;
    gateway.proc.kill('SIGINT');
    const answers = await Promise.all(submits);
    const code = await gateway.exited;
    const output = gateway.output();
    gateway = undefined;

    expect(output).not.toMatch(/Database is closed|Uncaught|Unhandled/i);
    expect(output).toContain('stopped; tasks and videos are kept in');
    expect(code).toBe(0);
    // Submits the gateway had taken were answered after Ctrl-C, not cut off; any that came
    // in while it stopped were turned away with a 503.
    expect(answeredWhileStopping).toBeGreaterThan(0);
    for (const answer of answers) {
      if (answer.status === 503) expect(answer.body).toEqual({ message: 'Service Unavailable' });
      else expect(answer).toMatchObject({ status: 200, body: { id: expect.stringMatching(/^task_/) } });
    }
    const ids = answers.flatMap((a) => (a.body.id ? [a.body.id] : []));
    expect(ids.length).toBeGreaterThan(0);

    gateway = await startNpmStart(dataDir, { PORT: String(port) });
    const deadline = Date.now() + 60_000;
    for (const id of ids) {
      for (;;) {
        const view = (await (await api(`/v1/videos/generations/${id}`)).json()) as { status?: string };
        if (view.status === 'succeeded') break;
        if (Date.now() > deadline) throw new Error(`task ${id} is ${JSON.stringify(view)} a minute after the restart\n${gateway.output().slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }, 180_000);
});
