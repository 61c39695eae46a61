import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startNpmStart } from './local-start';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const upstreams = JSON.stringify([{ name: 'reseller-a', kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-a' }]);

describe('npm start with a bad catalog', () => {
  // The Lambdas read their catalog on first use; npm start still checks all of it before it serves.
  it.each([
    ['a route to an upstream nobody named', { UPSTREAMS: upstreams, MODELS: '{"m":{"durations":[5],"routes":[{"upstream":"nowhere","model":"x"}]}}' }, 'MODELS.m.routes[0].upstream: no upstream is named nowhere'],
    ['an upstream without its baseUrl', { UPSTREAMS: '[{"name":"r","kind":"openai"}]' }, 'UPSTREAMS[0] (r): a openai upstream needs baseUrl'],
  ])('%s: names the entry in one line, without a stack trace, and exits 1', async (_what, env, message) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vtg-start-config-'));
    dirs.push(dataDir);
    const started = await startNpmStart(dataDir, env, { expectExit: true });
    expect(await started.exited).toBe(1);
    expect(started.output()).toMatch(/^npm start: invalid gateway configuration:$/m);
    expect(started.output()).toContain(message);
    expect(started.output()).not.toMatch(/\n\s+at /);
    expect(started.output()).not.toContain('Ctrl-C stops.');
  }, 90_000);
});
