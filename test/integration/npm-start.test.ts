import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'vtg-start-'));
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * The environment of a user's shell: without the switch that silences the AWS SDK's notice
 * about Node versions, so a test sees whether the project's own commands print it.
 */
function quiet(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  return env;
}
const sdkNotice = /NodeVersionSupportWarning|will require node/;

/** `npm start` as a user runs it; resolves with everything it printed up to "Ctrl-C stops." */
async function start(port: number): Promise<{ proc: ChildProcess; output: () => string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
    env: quiet({ PORT: String(port), DATA_DIR: dataDir, SIM_RENDER_MS: '300', LOCAL_API_KEY: '' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${out}`)), 45_000);
    const check = () => {
      if (out.includes('Ctrl-C stops.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return { proc, output: () => out };
}

const stop = (proc: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.kill('SIGINT');
  });

describe('npm start', () => {
  it('prints a key and a curl line that work as printed; Ctrl-C stops cleanly; a restart keeps the task and its video', async () => {
    const port = await freePort();
    const first = await start(port);
    child = first.proc;
    const printed = first.output();
    const key = /Local API key: (\S+)/.exec(printed)?.[1];
    expect(key).toMatch(/^vtg_/);
    const curl = printed.split('\n').find((l) => l.trim().startsWith('curl -s http') && l.includes('-d '))!.trim();
    expect(curl).toContain(`http://127.0.0.1:${port}/v1/videos/generations`);

    // With no catalog of the operator's, every dialect has a demo model, listed with its route.
    expect(printed).toMatch(/^ {2}sora-2 +simulated \(simulated\)$/m);
    for (const [model, kind] of [['seedance-2.0', 'openai'], ['luma-ray-2', 'bedrock'], ['kling-2.1', 'fal'], ['wan-2.5', 'replicate'], ['veo-3.1', 'openrouter']] as const)
      expect(printed).toMatch(new RegExp(`^ {2}${model.replace('.', '\\.')} +${kind} \\(demo-${kind}\\)$`, 'm'));

    const { stdout } = await run('bash', ['-c', curl]);
    const { id } = JSON.parse(stdout) as { id: string };
    expect(id).toMatch(/^task_/);

    const readTask = async (taskId: string) =>
      (await (await fetch(`http://127.0.0.1:${port}/v1/videos/generations/${taskId}`, { headers: { authorization: `Bearer ${key}` } })).json()) as any;
    /** The task's view once it succeeded, or as it is after `seconds`. */
    const settled = async (taskId: string, seconds: number) => {
      let seen = await readTask(taskId);
      for (let i = 0; i < seconds * 10 && seen.status !== 'succeeded'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await readTask(taskId);
      }
      return seen;
    };
    const read = () => readTask(id);
    const view = await settled(id, 10);
    expect(view.status).toBe('succeeded');

    // A demo model of a poll-only dialect (OpenAI-compatible): no callback, the poll queue finds it done.
    const demo = await fetch(`http://127.0.0.1:${port}/v1/videos/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'seedance-2.0', prompt: 'a paper boat on a pond', duration: 5, aspect_ratio: '1:1' }),
    });
    const demoId = ((await demo.json()) as { id: string }).id;
    expect(demo.status).toBe(200);
    expect(await settled(demoId, 30)).toMatchObject({ status: 'succeeded', model: 'seedance-2.0', duration: 5, aspect_ratio: '1:1', video: { content_type: 'video/mp4' } });

    expect(await stop(first.proc)).toBe(0);
    expect(first.output()).toContain('stopped; tasks and videos are kept');
    // On Node 20 the project's commands print no AWS SDK notice about Node versions.
    expect(first.output()).not.toMatch(sdkNotice);
    const keys = await run(process.execPath, ['--import', 'tsx', 'bin/keys.ts', 'list', '--data-dir', dataDir], { env: quiet({}) });
    expect(keys.stdout).toMatch(/^\w{12} +local +active +client/m);
    expect(`${keys.stdout}${keys.stderr}`).not.toMatch(sdkNotice);

    const second = await start(port);
    child = second.proc;
    expect(/Local API key: (\S+)/.exec(second.output())?.[1]).toBe(key);
    const again = await read();
    expect(again).toMatchObject({ id, status: 'succeeded', video: { sha256: view.video.sha256 } });
    const video = Buffer.from(await (await fetch(again.data.videos[0].url)).arrayBuffer());
    expect(video.length).toBe(view.video.bytes);
    expect(await stop(second.proc)).toBe(0);
    child = undefined;
  }, 120_000);
});
