import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { main as keys } from '../../bin/keys';
import { DataDirError, lockDataDir } from '../../local/data-dir';
import { startLocalGateway } from '../../local/gateway';
import { startNpmStart, stopNpmStart, type StartedGateway } from './local-start';

const run = promisify(execFile);
const dirs: string[] = [];
const running: StartedGateway[] = [];
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtg-datadir-'));
  dirs.push(dir);
  return dir;
};

afterAll(async () => {
  for (const r of running) r.proc.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Every file and folder under `dir`, with its permission bits. */
function modes(dir: string): [string, number][] {
  const out: [string, number][] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    out.push([path, statSync(path).mode & 0o777]);
  }
  return out;
}

const quiet = { out: () => undefined, err: () => undefined };

describe('the data directory', () => {
  it('a second npm start on a data directory in use says so and exits 1; the first keeps serving; everything in it is private', async () => {
    const dataDir = freshDir();
    chmodSync(dataDir, 0o755); // as an older gateway, or mkdir, left it
    const first = await startNpmStart(dataDir);
    running.push(first);
    const url = /running on (http:\S+)/.exec(first.output())![1]!;

    const second = await startNpmStart(dataDir, {}, { expectExit: true });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`is in use by npm start (pid ${first.proc.pid}, since `);
    expect(second.output()).toContain('Stop that one first, or give this one another DATA_DIR.');
    expect(second.output()).not.toMatch(/\n\s+at /); // no stack trace

    const curl = first.output().split('\n').find((l) => l.trim().startsWith('curl -s http') && l.includes('-d '))!.trim();
    const { stdout } = await run('bash', ['-c', curl]);
    expect(JSON.parse(stdout).id).toMatch(/^task_/);
    expect((await fetch(`${url}/openapi.json`)).status).toBe(200);

    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    // The console's build output is the repository's public page and styles, not data.
    const open = modes(dataDir).filter(([path, mode]) => (mode & 0o077) !== 0 && !path.startsWith(join(dataDir, 'console')));
    expect(open).toEqual([]);
    expect(modes(dataDir).map(([p]) => p)).toEqual(expect.arrayContaining([join(dataDir, 'secrets.json'), join(dataDir, 'dynamodb', 'CURRENT')]));
    expect(await stopNpmStart(first)).toBe(0);
  }, 120_000);

  const malformed: [string, string, string, RegExp][] = [
    ['secrets.json', '{}', 'secrets.json is not what the gateway wrote (callbackSecret', /delete it to have new secrets made/],
    ['secrets.json', '{"callbackSecret":"undefined","upstreamKey":"sim_0123456789abcdef"}', 'callbackSecret', /delete it/],
    ['secrets.json', '', 'secrets.json is empty', /delete it/],
    ['secrets.json', '{"callbackSecret": "abc', 'secrets.json is not valid JSON', /delete it/],
    ['local-key.json', '{}', 'local-key.json is not what the gateway wrote (apiKey', /new local key made/],
    ['local-key.json', 'garbage', 'local-key.json is not valid JSON', /new local key/],
    ['queues/sqs.json', '{"version":1,"queues":[{"name":"archive"}]}', 'sqs.json is not what the local SQS wrote', /start with empty queues/],
    ['queues/sqs.json', '\u0000\u0000', 'sqs.json is not valid JSON', /empty queues/],
    ['upstreams/duomi.jsonl', '{"at":1,"id":"x","job":{}}\n{"at":1,"port":1}\n', 'duomi.jsonl line 1 is not a job', /start that simulator empty/],
  ];

  it.each(malformed)('a malformed %s (%j) stops the start with the file named and what to do; nothing is left running', async (file, content, message, remedy) => {
    const dataDir = freshDir();
    mkdirSync(join(dataDir, 'queues'), { recursive: true });
    mkdirSync(join(dataDir, 'upstreams'), { recursive: true });
    writeFileSync(join(dataDir, file), content);
    const error = await startLocalGateway({ dataDir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).toMatch(remedy);
    expect(process.env.CALLBACK_SECRET ?? '').not.toBe('undefined');
    // The lock went with the failed start: fixing the file is enough to start again.
    lockDataDir(dataDir, 'the next start').release();
  }, 60_000);

  it('npm start names a bad file in one line, without a stack trace, and exits 1', async () => {
    const dataDir = freshDir();
    writeFileSync(join(dataDir, 'secrets.json'), '{}');
    const started = await startNpmStart(dataDir, {}, { expectExit: true });
    expect(await started.exited).toBe(1);
    expect(started.output()).toMatch(/^npm start: \S*secrets\.json is not what the gateway wrote \(callbackSecret: .*\)\. Restore it, or delete it/m);
    expect(started.output()).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('a revoked local key stays revoked: the next npm start says so and prints a new key whose curl line works', async () => {
    const dataDir = freshDir();
    const first = await startNpmStart(dataDir);
    running.push(first);
    const oldKey = /Local API key: (\S+)/.exec(first.output())![1]!;
    const out: string[] = [];
    expect(await keys(['list', '--data-dir', dataDir, '--json'], { out: (s) => out.push(s), err: () => undefined })).toBe(0);
    const id = (JSON.parse(out.join('')) as { keys: { id: string; name: string }[] }).keys.find((k) => k.name === 'local')!.id;
    expect(await keys(['revoke', id, '--data-dir', dataDir], quiet)).toBe(0);
    expect(await stopNpmStart(first)).toBe(0);

    const second = await startNpmStart(dataDir);
    running.push(second);
    const printed = second.output();
    expect(printed).toContain(`The previous local key (id ${id}) was revoked; this is a new one`);
    const newKey = /Local API key: (\S+)/.exec(printed)![1]!;
    expect(newKey).not.toBe(oldKey);
    expect(JSON.parse(readFileSync(join(dataDir, 'local-key.json'), 'utf8')).apiKey).toBe(newKey);
    const curl = printed.split('\n').find((l) => l.trim().startsWith('curl -s http') && l.includes('-d '))!.trim();
    const { stdout } = await run('bash', ['-c', curl]);
    expect(JSON.parse(stdout).id).toMatch(/^task_/);
    const url = /running on (http:\S+)/.exec(printed)![1]!;
    expect((await fetch(`${url}/v1/videos/generations`, { headers: { authorization: `Bearer ${oldKey}` } })).status).toBe(401);
    expect(await stopNpmStart(second)).toBe(0);

    const given = await startNpmStart(dataDir, { LOCAL_API_KEY: oldKey });
    running.push(given);
    expect(given.output()).toContain(`LOCAL_API_KEY (id ${id}) is revoked: requests with it answer 401.`);
    expect(given.output()).not.toContain('curl -s');
    expect(await stopNpmStart(given)).toBe(0);
  }, 150_000);
});
