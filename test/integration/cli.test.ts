import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers';

/** `vtg` as a user runs it: a separate process, against the real local gateway. */
const execFileAsync = promisify(execFile);
const vtgBin = join(process.cwd(), 'bin/vtg.mjs');
const outDir = mkdtempSync(join(tmpdir(), 'vtg-cli-'));
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ renderMs: 1500 });
});
afterAll(async () => {
  await h.close();
  rmSync(outDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function vtg(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [vtgBin, ...args], {
      cwd: outDir,
      env: { ...process.env, VTG_URL: h.gw.url, VTG_KEY: h.gw.apiKey, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The same, on a pseudo-terminal (util-linux `script`), as a person at a terminal sees it. */
async function vtgOnTerminal(args: string[]): Promise<Run> {
  const command = [process.execPath, vtgBin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  try {
    const { stdout } = await execFileAsync('script', ['-qefc', command, '/dev/null'], {
      cwd: outDir,
      env: { ...process.env, VTG_URL: h.gw.url, VTG_KEY: h.gw.apiKey, COLUMNS: '100' },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout, stderr: '' };
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// Each run starts a Node process of its own: give a busy machine time.
describe('vtg generate', { timeout: 60_000 }, () => {
  it('shows a progress bar on a terminal through queued, rendering and archiving, then downloads the MP4', async () => {
    const run = await vtgOnTerminal(['generate', '--model', 'sora-2', '--prompt', 'a lighthouse at dusk', '--duration', '10', '--out', 'dusk.mp4']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/█/); // the bar itself
    expect(run.stdout).toMatch(/\d+% \| rendering/);
    expect(run.stdout).toMatch(/100% \| downloading/);
    const file = join(outDir, 'dusk.mp4');
    const bytes = readFileSync(file);
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(run.stdout).toContain(`dusk.mp4: ${bytes.length} bytes`);
    expect(run.stdout).toContain(sha256(file));
  });

  it('prints one JSON document with --json, the file named in it, and exits 0', async () => {
    const run = await vtg(['--json', 'generate', '--model', 'sora-2', '--prompt', 'rain on a window', '--aspect-ratio', '9:16', '--out', 'rain.mp4']);
    expect(run.code).toBe(0);
    const task = JSON.parse(run.stdout);
    expect(task).toMatchObject({ status: 'succeeded', aspect_ratio: '9:16', file: 'rain.mp4' });
    expect(sha256(join(outDir, 'rain.mp4'))).toBe(task.video.sha256);
    expect(run.stderr).toBe('');
  });

  it('exits 1 with the task error when the upstream fails the task, and writes no file', async () => {
    const run = await vtg(['generate', '--model', 'sora-2', '--prompt', 'a storm sim:fail', '--out', 'storm.mp4']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/failed: upstream_failed/);
    expect(existsSync(join(outDir, 'storm.mp4'))).toBe(false);
  });

  it('exits 2 with the gateway’s message and the field when the request is refused', async () => {
    const run = await vtg(['generate', '--model', 'sora-2', '--prompt', 'x', '--duration', '7']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^vtg: .*duration.* \(duration\)\n$/);
    const json = await vtg(['--json', 'generate', '--model', 'no-such-model', '--prompt', 'x']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { status: 400, param: 'model' } });
  });

  it('exits 2 for a missing flag, a wrong key and an unreachable gateway', async () => {
    const missing = await vtg(['generate', '--model', 'sora-2']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--prompt <text>' not specified/);
    const wrongKey = await vtg(['list'], { VTG_KEY: 'vtg_wrong' });
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).toMatch(/^vtg: /);
    const nowhere = await vtg(['list'], { VTG_URL: 'http://127.0.0.1:9' });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
    const noUrl = await vtg(['list'], { VTG_URL: '' });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toBe('vtg: set VTG_URL (or --url) to the gateway URL\n');
  });
});

describe('vtg status, list, download, models', { timeout: 90_000 }, () => {
  it('reads back what it made', async () => {
    const made = JSON.parse((await vtg(['--json', 'generate', '--model', 'sora-2', '--prompt', 'a fox in snow', '--no-download'])).stdout);
    const status = await vtg(['status', made.id]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^${made.id}  succeeded\\s+sora-2  10s 16:9`));
    const list = JSON.parse((await vtg(['--json', 'list', '--limit', '1'])).stdout);
    expect(list.data[0].id).toBe(made.id);
    expect(list.has_more).toBe(true);
    const download = await vtg(['download', made.id, '--out', 'fox.mp4']);
    expect(download.code).toBe(0);
    expect(sha256(join(outDir, 'fox.mp4'))).toBe(made.video.sha256);
    const models = await vtg(['models']);
    expect(models.code).toBe(0);
    expect(models.stdout).toMatch(/^sora-2-pro  durations 10\/15\/25 s  ratios 16:9 9:16/m);
  });

  it('exits 1 for the status of a failed task and 2 for an unknown one', async () => {
    const failed = JSON.parse((await vtg(['--json', 'generate', '--model', 'sora-2', '--prompt', 'sim:fail'])).stderr);
    const status = await vtg(['status', failed.task.id]);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/failed .*upstream_failed/);
    const unknown = await vtg(['status', 'task_nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/not found|no such task/i);
  });
});
