import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { esmRequireBanner, GatewayFunction } from '../../lib/gateway-function';
import { projectRoot } from '../../lib/gateway-stack';

/**
 * One real bundle, built the way `cdk synth` builds all six (local esbuild, no Docker, no
 * network): the rest of the infra tests skip bundling to stay fast.
 */
let outdir: string;
let bundleDir: string;

beforeAll(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-bundle-'));
  const app = new App({ outdir, builtinCloudFormationValidation: false });
  const stack = new Stack(app, 'Bundling');
  new GatewayFunction(stack, 'Submit', {
    name: 'submit',
    projectRoot,
    environment: {},
    timeout: Duration.seconds(29),
    memorySize: 512,
    description: 'bundling test',
    logRetention: RetentionDays.ONE_DAY,
  });
  const assembly = app.synth();
  const assets = fs.readdirSync(assembly.directory).filter((f) => f.startsWith('asset.'));
  expect(assets).toHaveLength(1);
  bundleDir = path.join(assembly.directory, assets[0]!);
}, 120_000);

afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

describe('Lambda bundles', () => {
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

  it('load in Node as ESM and export the handler', () => {
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
      ['--enable-source-maps', '--input-type=module', '-e', `const m = await import(${JSON.stringify(url)}); console.log(typeof m.handler);`],
      { env, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('function');
  });
});
