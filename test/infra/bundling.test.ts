import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as esbuild from 'esbuild';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerKinds, type ProviderKind } from '../../lambdas/shared/catalog';
import { parseConfig } from '../../lambdas/shared/config';
import { upstreamRegistry } from '../../lambdas/shared/providers';
import { bundledKindDefines, kindsFor, neverCallBack } from '../../lib/bundled-kinds';
import { esmRequireBanner, GatewayFunction } from '../../lib/gateway-function';
import { projectRoot } from '../../lib/gateway-stack';

/**
 * Real bundles, built the way `cdk synth` builds them (local esbuild, no Docker, no
 * network): the rest of the infra tests skip bundling to stay fast. One for a stage whose
 * upstreams are duomi and openai, one whose upstreams add Bedrock.
 */
const outdirs: string[] = [];

function bundleSubmit(kinds: ProviderKind[]): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-bundle-'));
  outdirs.push(outdir);
  const app = new App({ outdir, builtinCloudFormationValidation: false });
  const stack = new Stack(app, 'Bundling');
  new GatewayFunction(stack, 'Submit', {
    name: 'submit',
    projectRoot,
    environment: {},
    define: bundledKindDefines(kinds),
    timeout: Duration.seconds(29),
    memorySize: 512,
    description: 'bundling test',
    logRetention: RetentionDays.ONE_DAY,
  });
  const assembly = app.synth();
  const assets = fs.readdirSync(assembly.directory).filter((f) => f.startsWith('asset.'));
  expect(assets).toHaveLength(1);
  return path.join(assembly.directory, assets[0]!);
}

let bundleDir: string;
let withBedrock: string;
beforeAll(() => {
  bundleDir = bundleSubmit(['duomi', 'openai']);
  withBedrock = bundleSubmit(['duomi', 'openai', 'bedrock']);
}, 240_000);

afterAll(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const sourcesOf = (dir: string) =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] }).sources;

describe('Lambda bundles', () => {
  it('hold the provider kinds the stage configures, and no other kind or its SDK', () => {
    const providers = (dir: string) =>
      sourcesOf(dir)
        .map((s) => /lambdas\/shared\/providers\/([\w-]+)\.ts$/.exec(s)?.[1])
        .filter((k): k is string => k !== undefined && (providerKinds as readonly string[]).includes(k))
        .sort();
    const bedrockSdk = (dir: string) => sourcesOf(dir).some((s) => s.includes('node_modules/@aws-sdk/client-bedrock-runtime/'));
    expect(providers(bundleDir)).toEqual(['duomi', 'openai']);
    expect(bedrockSdk(bundleDir)).toBe(false);
    expect(providers(withBedrock)).toEqual(['bedrock', 'duomi', 'openai']);
    expect(bedrockSdk(withBedrock)).toBe(true);
    expect(fs.statSync(path.join(withBedrock, 'index.mjs')).size - fs.statSync(path.join(bundleDir, 'index.mjs')).size).toBeGreaterThan(50_000);
  });

  it('take each AWS SDK command they send, never a client\'s aggregate of all its commands', () => {
    // The aggregate (`SecretsManager.js`, `S3.js`: every command's schema) comes in when a
    // module reached by a lazy `import()` imports an SDK client: the module is then wrapped,
    // and tree shaking of the client package lost (13 KB more in submit once).
    const aggregates = (dir: string) =>
      sourcesOf(dir)
        .filter((s) => /@aws-sdk\/client-[\w-]+\/dist-es\/(?:[A-Z]\w*(?<!Client)\.js|commands\/index\.js)$/.test(s))
        .map((s) => s.replace(/^.*node_modules\//, ''));
    expect(aggregates(bundleDir)).toEqual([]);
    // The Bedrock runtime client is imported by the Bedrock adapter alone, which loads on first
    // use: it comes whole (7 KB more than its three commands), the one client that does.
    expect(aggregates(withBedrock)).toEqual([
      '@aws-sdk/client-bedrock-runtime/dist-es/BedrockRuntime.js',
      '@aws-sdk/client-bedrock-runtime/dist-es/commands/index.js',
    ]);
  });

  it('are one ESM file and its source map', () => {
    expect(fs.readdirSync(bundleDir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
  });

  it('start with the createRequire banner, are minified, and point to their source map', () => {
    const code = fs.readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8');
    expect(code.startsWith(esmRequireBanner)).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*\bas handler\b[^}]*\}/);
    expect(code.split('\n').length).toBeLessThan(code.length / 2000);
    expect(code.trimEnd().endsWith('//# sourceMappingURL=index.mjs.map')).toBe(true);
  });

  it('include the AWS SDK and map back to the TypeScript sources', () => {
    const map = JSON.parse(fs.readFileSync(path.join(bundleDir, 'index.mjs.map'), 'utf8')) as {
      sources: string[];
      sourcesContent?: unknown;
    };
    expect(map.sources.some((s) => s.endsWith('lambdas/submit/handler.ts'))).toBe(true);
    expect(map.sourcesContent).toBeUndefined();
    expect(map.sources.some((s) => s.includes('node_modules/@aws-sdk/client-dynamodb/'))).toBe(true);
  });

  it('load in Node as ESM and export the handler, without loading Node\'s web streams', () => {
    const env = {
      PATH: process.env.PATH,
      TABLE_NAME: 'tasks',
      BUCKET_NAME: 'videos',
      ARCHIVE_QUEUE_URL: 'https://sqs.example/archive',
      NOTIFY_QUEUE_URL: 'https://sqs.example/notify',
      POLL_QUEUE_URL: 'https://sqs.example/poll',
      PUBLIC_BASE_URL: 'https://api.example',
      UPSTREAM_BASE_URL: 'https://upstream.example',
      UPSTREAM_KEY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC123',
      CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:c-AbC123',
      AWS_REGION: 'eu-west-1',
    };
    const url = pathToFileURL(path.join(bundleDir, 'index.mjs')).href;
    const out = execFileSync(
      process.execPath,
      ['--enable-source-maps', '--input-type=module', '-e', `const m = await import(${JSON.stringify(url)}); console.log(typeof m.handler, process.moduleLoadList.some((m) => m.endsWith(' stream/web')));`],
      { env, encoding: 'utf8' },
    );
    // middy's import of node:stream/web is the lazy stand-in (bundleAliases), not Node's module.
    expect(out.trim()).toBe('function false');
    expect(fs.readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8')).not.toContain('node:stream/web');
  });
});

/** A runtime configuration whose only interesting part is its upstreams. */
const configWith = (upstreams: unknown[]) =>
  parseConfig({
    TABLE_NAME: 't',
    BUCKET_NAME: 'b',
    ARCHIVE_QUEUE_URL: 'https://sqs.example/a',
    NOTIFY_QUEUE_URL: 'https://sqs.example/n',
    POLL_QUEUE_URL: 'https://sqs.example/p',
    PUBLIC_BASE_URL: 'https://api.example',
    CALLBACK_SECRET: 'c',
    UPSTREAMS: JSON.stringify(upstreams),
  });

describe('which kinds each Lambda bundles (lib/bundled-kinds.ts)', () => {
  it('callbacks leave out exactly the kinds whose adapters never call back', async () => {
    const config = configWith(
      providerKinds.map((kind) => ({ name: kind, kind, ...(kind === 'bedrock' ? { region: 'us-west-2' } : { baseUrl: 'https://upstream.example' }), apiKey: 'k' })),
    );
    const registry = upstreamRegistry(config);
    const silent: ProviderKind[] = [];
    for (const kind of providerKinds) if (!(await registry.get(kind)).callsBack) silent.push(kind);
    expect(silent.sort()).toEqual([...neverCallBack].sort());
    expect(kindsFor('callback', providerKinds)).toEqual(providerKinds.filter((k) => !silent.includes(k)));
  });

  it('submit, reconcile and poll bundle every configured kind; archive, query, notify and the console none', () => {
    for (const name of ['submit', 'reconcile', 'poll'] as const) expect(kindsFor(name, providerKinds)).toEqual([...providerKinds]);
    for (const name of ['archive', 'query', 'notify', 'console'] as const) expect(kindsFor(name, providerKinds)).toEqual([]);
  });
});

describe('a kind left out of a bundle', () => {
  it('is refused by the registry with a configuration error, not loaded', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-registry-'));
    outdirs.push(dir);
    const outfile = path.join(dir, 'registry.mjs');
    const built = await esbuild.build({
      entryPoints: [path.join(projectRoot, 'lambdas/shared/providers/index.ts')],
      metafile: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile,
      banner: { js: esmRequireBanner },
      define: bundledKindDefines(['openai']),
      logLevel: 'error',
    });
    const { upstreamRegistry: bundledRegistry } = (await import(pathToFileURL(outfile).href)) as typeof import('../../lambdas/shared/providers');
    const config = configWith([
      { name: 'reseller', kind: 'openai', baseUrl: 'https://api.reseller.example/v1', apiKey: 'k' },
      { name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com', apiKey: 'k' },
    ]);
    const registry = bundledRegistry(config);
    expect((await registry.get('reseller')).kind).toBe('openai');
    await expect(registry.get('duomi')).rejects.toThrow('upstream kind duomi is not in this build: the stack bundles only the kinds its upstreams name');
    const inputs = Object.keys(built.metafile.inputs).filter((f) => f.startsWith('lambdas/shared/providers/'));
    expect(inputs).toContain('lambdas/shared/providers/openai.ts');
    expect(inputs.filter((f) => /\/(duomi|simulated|bedrock|fal|replicate|openrouter)\.ts$/.test(f))).toEqual([]);
  });
});
