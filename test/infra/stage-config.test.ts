import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lambdas/shared/config';
import { parseStageConfig, readStageConfig, StageConfigError, stackName } from '../../lib/stage-config';

const noContext = () => undefined;
const context = (values: Record<string, unknown>) => (key: string) => values[key];

describe('stage configuration', () => {
  it('defaults to the duomi upstream and to the runtime configuration’s own defaults', () => {
    const config = readStageConfig(noContext, {});
    const runtime = configSchema.shape;
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
      context({ stage: 'prod', modelMap: { 'sora-2-pro': 'sora-2-pro-hd' }, disabledModels: ['sora-2'], archiveMaxAttempts: '3' }),
      { ARCHIVE_MAX_ATTEMPTS: '9' },
    );
    expect(config).toMatchObject({
      stage: 'prod',
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
