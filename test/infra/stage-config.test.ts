import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lambdas/shared/config';
import { projectRoot } from '../../lib/gateway-stack';
import { parseStageConfig, readStageConfig, StageConfigError, stackName } from '../../lib/stage-config';

const noContext = () => undefined;
const context = (values: Record<string, unknown>) => (key: string) => values[key];

describe('stage configuration', () => {
  it('defaults to the duomi upstream and to the runtime configuration’s own defaults', () => {
    const config = readStageConfig(noContext, {});
    const runtime = configSchema().shape;
    expect(config).toMatchObject({
      upstreamProvider: 'duomi',
      upstreamBaseUrl: 'https://duomiapi.com',
      modelMap: '{}',
      disabledModels: '',
      presignTtlSeconds: runtime.PRESIGN_TTL_SECONDS.parse(undefined),
      taskDeadlineSeconds: runtime.TASK_DEADLINE_SECONDS.parse(undefined),
      archiveMaxAttempts: runtime.ARCHIVE_MAX_ATTEMPTS.parse(undefined),
      maxVideoBytes: runtime.MAX_VIDEO_BYTES.parse(undefined),
      throttleRateLimit: 50,
      throttleBurstLimit: 100,
    });
    expect(config.upstreamKeySecretArn).toBeUndefined();
    expect(stackName(config)).toBe('VideoTaskGateway');
  });

  it('reads the environment under the runtime configuration’s names', () => {
    const config = readStageConfig(noContext, {
      UPSTREAM_BASE_URL: 'https://upstream.example',
      MODEL_MAP: '{"sora-2":"sora-2-hd"}',
      DISABLED_MODELS: 'sora-2-temporary, sora-2-pro',
      ARCHIVE_MAX_ATTEMPTS: '8',
      THROTTLE_RATE_LIMIT: '20',
      THROTTLE_BURST_LIMIT: '40',
      TASK_DEADLINE_SECONDS: '',
    });
    expect(config).toMatchObject({
      upstreamBaseUrl: 'https://upstream.example',
      modelMap: '{"sora-2":"sora-2-hd"}',
      disabledModels: 'sora-2-temporary,sora-2-pro',
      archiveMaxAttempts: 8,
      throttleRateLimit: 20,
      throttleBurstLimit: 40,
      taskDeadlineSeconds: 7200,
    });
  });

  it('CDK context wins over the environment, and may hold objects and lists (cdk.json)', () => {
    const config = readStageConfig(
      context({ stage: 'prod', modelMap: { 'sora-2-pro': 'sora-2-pro-hd' }, disabledModels: ['sora-2'], archiveMaxAttempts: '3', defaultLimits: { concurrent: 10, rpm: 60 } }),
      { ARCHIVE_MAX_ATTEMPTS: '9', DEFAULT_LIMITS: '{"rpm":5}' },
    );
    expect(config).toMatchObject({
      stage: 'prod',
      defaultLimits: '{"concurrent":10,"rpm":60}',
      modelMap: '{"sora-2-pro":"sora-2-pro-hd"}',
      disabledModels: 'sora-2',
      archiveMaxAttempts: 3,
    });
    expect(stackName(config)).toBe('VideoTaskGateway-prod');
  });

  it.each([
    [{ upstreamProvider: 'simulated' }, /loopback/],
    [{ upstreamBaseUrl: 'http://duomiapi.com' }, /https/],
    [{ modelMap: '{"sora-3":"x"}' }, /modelMap/],
    [{ modelMap: 'not json' }, /modelMap/],
    [{ disabledModels: 'sora-9' }, /disabledModels/],
    [{ defaultLimits: { rpm: 0 } }, /defaultLimits/],
    [{ defaultLimits: { requests: 5 } }, /defaultLimits/],
    [{ upstreamKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:duomi-key' }, /complete ARN/],
    [{ archiveMaxAttempts: 0 }, /archiveMaxAttempts/],
    [{ upstreamTimeoutMs: 29_000 }, /30 s/],
    [{ throttleRateLimit: 200, throttleBurstLimit: 100 }, /throttleBurstLimit/],
    [{ stage: 'prod/eu' }, /stage/],
  ])('refuses %j', (input, message) => {
    expect(() => parseStageConfig(input)).toThrow(StageConfigError);
    expect(() => parseStageConfig(input)).toThrow(message);
  });
});

describe('the catalog in CDK context (-c upstreams=…, -c models=…, or cdk.json)', () => {
  const upstreams = [
    { name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1/' },
    { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
  ];
  const models = { 'ray-2': { durations: [5, 9], maxImages: 0, routes: [{ upstream: 'aws', model: 'luma.ray-v2:0' }, { upstream: 'reseller-a', model: 'luma-ray-2' }] } };

  it('reads JSON text (the CLI) and objects (cdk.json) alike, with the runtime catalog parser', () => {
    for (const input of [{ upstreams, models }, { upstreams: JSON.stringify(upstreams), models: JSON.stringify(models) }]) {
      const config = readStageConfig(context(input), {});
      expect(config.catalog.upstreams).toEqual([
        { name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1' },
        { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
      ]);
      expect(config.catalog.models['ray-2']).toMatchObject({ durations: [5, 9], defaultDuration: 5, maxImages: 0, aspectRatios: ['16:9', '9:16'] });
    }
  });

  it('upstreams alone carry the seed models on the first upstream; neither gives the duomi shorthand', () => {
    expect(Object.keys(parseStageConfig({ upstreams }).catalog.models)).toEqual(['sora-2', 'sora-2-pro', 'sora-2-temporary']);
    expect(parseStageConfig({}).catalog.upstreams).toEqual([{ name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com' }]);
  });

  it('reads UPSTREAMS and MODELS from the environment too', () => {
    const config = readStageConfig(noContext, { UPSTREAMS: JSON.stringify(upstreams), MODELS: JSON.stringify(models) });
    expect(Object.keys(config.catalog.models)).toEqual(['ray-2']);
  });

  it.each([
    [{ upstreams: '[{"name": "a"' }, 'UPSTREAMS is not valid JSON'],
    [{ upstreams: [{ name: 'reseller-a', kind: 'openai' }] }, 'UPSTREAMS[0] (reseller-a): a openai upstream needs baseUrl'],
    [{ upstreams: [{ name: 'Reseller', kind: 'openai', baseUrl: 'https://x.example/v1' }] }, 'UPSTREAMS[0].name: an upstream name is lower-case'],
    [{ upstreams: [...upstreams, { name: 'aws', kind: 'bedrock', region: 'us-east-1' }] }, 'UPSTREAMS[2] (aws): the name aws is used twice'],
    [{ upstreams, models: { 'ray-2': { durations: [5], routes: [{ upstream: 'azure', model: 'x' }] } } }, 'MODELS.ray-2.routes[0].upstream: no upstream is named azure'],
    [{ upstreams, models: { 'ray-2': { durations: [5], defaultDuration: 9, routes: [{ upstream: 'aws', model: 'x' }] } } }, 'MODELS.ray-2.defaultDuration: 9 is not one of its durations'],
    [{ upstreams, models: { seedance: { routes: [{ upstream: 'aws', model: 'x' }] } } }, 'MODELS.seedance.durations: required'],
    [{ upstreams: [{ ...upstreams[0], apiKey: 'sk-live' }] }, 'upstreams[0] (reseller-a): apiKey is for local use'],
    [{ upstreams: [{ name: 'sim', kind: 'simulated', baseUrl: 'http://127.0.0.1:4010' }] }, 'upstreams[0] (sim): the simulated upstream only runs on loopback'],
    [{ upstreams: [{ name: 'plain', kind: 'openai', baseUrl: 'http://api.example/v1' }] }, 'upstreams[0] (plain): baseUrl must be an https URL'],
    [{ upstreams: [{ ...upstreams[0], timeoutMs: 25_000 }] }, 'upstreams[0] (reseller-a): timeoutMs at most 20000'],
    [{ upstreams, models, modelMap: { 'sora-2': 'x' } }, 'MODEL_MAP and DISABLED_MODELS shape the seed catalog'],
    [{ upstreams, upstreamKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC123' }, 'with upstreams set, name each existing secret in upstreamSecretArns'],
    [{ upstreams, upstreamSecretArns: { aws: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC123' } }, 'upstreamSecretArns.aws: a bedrock upstream takes no key'],
    [{ upstreams, upstreamSecretArns: { azure: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbC123' } }, 'upstreamSecretArns.azure: no upstream is named azure'],
    [{ upstreams, upstreamSecretArns: { 'reseller-a': 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k' } }, 'upstreamSecretArns.reseller-a: must be the complete ARN'],
  ])('refuses %j, naming the bad entry', (input, message) => {
    expect(() => parseStageConfig(input)).toThrow(StageConfigError);
    expect(() => parseStageConfig(input)).toThrow(message);
  });

  it('`cdk synth` stops before building anything, with the message naming the bad entry', () => {
    // What the CDK CLI does with -c: the app gets the context as CDK_CONTEXT_JSON.
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-badsynth-'));
    try {
      const result = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
        cwd: projectRoot,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify({ upstreams: JSON.stringify([{ name: 'reseller-a', kind: 'openai' }]) }) },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('invalid stage configuration');
      expect(result.stderr).toContain('UPSTREAMS[0] (reseller-a): a openai upstream needs baseUrl');
      expect(fs.readdirSync(outdir)).toEqual([]);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  }, 120_000);
});
