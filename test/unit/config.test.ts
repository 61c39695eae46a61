import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, parseConfig } from '../../lambdas/shared/config';

/** What the local runtime hands the handlers: every required variable, secrets as plain values. */
const localEnv = {
  TABLE_NAME: 'vtg-tasks',
  BUCKET_NAME: 'vtg-videos',
  ARCHIVE_QUEUE_URL: 'http://127.0.0.1:9324/000000000000/archive',
  NOTIFY_QUEUE_URL: 'http://127.0.0.1:9324/000000000000/notify',
  POLL_QUEUE_URL: 'http://127.0.0.1:9324/000000000000/poll',
  PUBLIC_BASE_URL: 'http://127.0.0.1:3000/',
  UPSTREAM_PROVIDER: 'simulated',
  UPSTREAM_BASE_URL: 'http://127.0.0.1:4010//',
  UPSTREAM_KEY: 'sk-local',
  CALLBACK_SECRET: 'local-callback-secret',
  LOCAL_MODE: 'true',
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
  S3_ENDPOINT: 'http://127.0.0.1:4569',
};

const required = ['TABLE_NAME', 'BUCKET_NAME', 'ARCHIVE_QUEUE_URL', 'NOTIFY_QUEUE_URL', 'POLL_QUEUE_URL', 'PUBLIC_BASE_URL', 'UPSTREAM_BASE_URL'];

function problemWith(env: Record<string, string | undefined>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected the configuration to be refused');
}

describe('parseConfig', () => {
  it('reads a complete local environment, filling in the defaults', () => {
    const config = parseConfig(localEnv);
    expect(config).toMatchObject({
      TABLE_NAME: 'vtg-tasks',
      BUCKET_NAME: 'vtg-videos',
      UPSTREAM_PROVIDER: 'simulated',
      UPSTREAM_KEY: 'sk-local',
      CALLBACK_SECRET: 'local-callback-secret',
      LOCAL_MODE: true,
      DISABLED_MODELS: [],
      MODEL_MAP: {},
      PRESIGN_TTL_SECONDS: 3600,
      TASK_DEADLINE_SECONDS: 7200,
      SILENT_AFTER_SECONDS: 300,
      RESUBMIT_BASE_SECONDS: 30,
      ARCHIVE_MAX_ATTEMPTS: 5,
      NOTIFY_RETRY_SECONDS: 26 * 3600,
      TASK_RETENTION_DAYS: 30,
      MAX_VIDEO_BYTES: 2 * 1024 ** 3,
      UPSTREAM_TIMEOUT_MS: 15_000,
      WEBHOOK_TIMEOUT_MS: 10_000,
      KEY_CACHE_SECONDS: 60,
    });
  });

  it('drops trailing slashes from the base URLs, so paths join cleanly', () => {
    const config = parseConfig(localEnv);
    expect(config.PUBLIC_BASE_URL).toBe('http://127.0.0.1:3000');
    expect(config.UPSTREAM_BASE_URL).toBe('http://127.0.0.1:4010');
  });

  it('uses the duomi upstream and cloud mode unless told otherwise', () => {
    const { UPSTREAM_PROVIDER: _p, LOCAL_MODE: _l, ...cloudish } = localEnv;
    const config = parseConfig(cloudish);
    expect(config.UPSTREAM_PROVIDER).toBe('duomi');
    expect(config.LOCAL_MODE).toBe(false);
  });

  it('reads numbers from their text', () => {
    const config = parseConfig({ ...localEnv, TASK_DEADLINE_SECONDS: '600', UPSTREAM_TIMEOUT_MS: '2500', KEY_CACHE_SECONDS: '0' });
    expect(config).toMatchObject({ TASK_DEADLINE_SECONDS: 600, UPSTREAM_TIMEOUT_MS: 2500, KEY_CACHE_SECONDS: 0 });
  });

  it('refuses a number that is not one', () => {
    expect(problemWith({ ...localEnv, TASK_DEADLINE_SECONDS: 'two hours' }).message).toContain('TASK_DEADLINE_SECONDS');
  });

  it.each(['yes', 'TRUE', 'on'])('refuses the flag value LOCAL_MODE=%s', (value) => {
    expect(problemWith({ ...localEnv, LOCAL_MODE: value }).message).toContain('LOCAL_MODE');
  });

  it('accepts secrets from Secrets Manager in place of plain values', () => {
    const { UPSTREAM_KEY: _k, CALLBACK_SECRET: _s, ...rest } = localEnv;
    const config = parseConfig({
      ...rest,
      UPSTREAM_KEY_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:upstream',
      CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:callback',
    });
    expect(config.UPSTREAM_KEY).toBeUndefined();
    expect(config.UPSTREAM_KEY_SECRET_ARN).toContain(':secret:upstream');
  });

  describe('a missing variable', () => {
    it.each(required)('stops with a ConfigError naming %s', (name) => {
      const env: Record<string, string | undefined> = { ...localEnv };
      delete env[name];
      expect(problemWith(env).message).toMatch(new RegExp(`^  ${name}: `, 'm'));
    });

    it('is reported together with every other one in a single message', () => {
      const { message } = problemWith({ UPSTREAM_KEY: 'k', CALLBACK_SECRET: 's' });
      expect(message).toMatch(/^invalid gateway configuration:/);
      for (const name of required) expect(message).toContain(`${name}:`);
    });

    it('names the upstream key and callback secret too when the environment is empty', () => {
      const { message } = problemWith({});
      for (const name of required) expect(message).toContain(`${name}:`);
      expect(message).toContain('UPSTREAM_KEY');
      expect(message).toContain('CALLBACK_SECRET');
    });
  });

  it('refuses a queue URL that is not a URL', () => {
    expect(problemWith({ ...localEnv, ARCHIVE_QUEUE_URL: 'archive-queue' }).message).toContain('ARCHIVE_QUEUE_URL');
  });

  describe('the upstream key', () => {
    it('must be set one way or the other', () => {
      const { UPSTREAM_KEY: _k, ...rest } = localEnv;
      expect(problemWith(rest).message).toContain('UPSTREAM_KEY: set UPSTREAM_KEY_SECRET_ARN (AWS) or UPSTREAM_KEY (local)');
    });
  });

  describe('the callback secret', () => {
    it('must be set one way or the other', () => {
      const { CALLBACK_SECRET: _s, ...rest } = localEnv;
      expect(problemWith(rest).message).toContain('CALLBACK_SECRET: set CALLBACK_SECRET_ARN (AWS) or CALLBACK_SECRET (local)');
    });

    it('may not be empty', () => {
      expect(problemWith({ ...localEnv, CALLBACK_SECRET: '' }).message).toContain('CALLBACK_SECRET');
    });
  });

  describe('MODEL_MAP', () => {
    it('maps gateway model names to upstream ones', () => {
      const config = parseConfig({ ...localEnv, MODEL_MAP: '{"sora-2":"sora-2-hd","sora-2-pro":"sora2-pro-v2"}' });
      expect(config.MODEL_MAP).toEqual({ 'sora-2': 'sora-2-hd', 'sora-2-pro': 'sora2-pro-v2' });
    });

    it('refuses text that is not JSON', () => {
      expect(problemWith({ ...localEnv, MODEL_MAP: '{sora-2: sora-2-hd' }).message).toContain(
        'MODEL_MAP: MODEL_MAP must be a JSON object',
      );
    });

    it('refuses JSON that is not an object of names', () => {
      expect(problemWith({ ...localEnv, MODEL_MAP: '["sora-2"]' }).message).toContain('MODEL_MAP');
      expect(problemWith({ ...localEnv, MODEL_MAP: '{"sora-2":""}' }).message).toContain('MODEL_MAP');
    });

    it('refuses a gateway model name it does not know', () => {
      expect(problemWith({ ...localEnv, MODEL_MAP: '{"sora-9":"x"}' }).message).toContain('MODEL_MAP');
    });
  });

  describe('DISABLED_MODELS', () => {
    it('is a comma-separated list of models', () => {
      expect(parseConfig({ ...localEnv, DISABLED_MODELS: 'sora-2, sora-2-temporary ,' }).DISABLED_MODELS).toEqual([
        'sora-2',
        'sora-2-temporary',
      ]);
    });

    it('refuses a model it does not know, naming the variable', () => {
      expect(problemWith({ ...localEnv, DISABLED_MODELS: 'sora-2,sora-3' }).message).toMatch(/^  DISABLED_MODELS\b/m);
    });
  });
});

describe('the configuration a Lambda reads', () => {
  afterEach(() => vi.unstubAllEnvs());

  /** `config()` of a fresh process with `env` as its environment. */
  async function lambdaConfig(env: Record<string, string>) {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    vi.resetModules();
    return import('../../lambdas/shared/config');
  }

  it('parses each variable when first read, so a bad one it never reads does not stop it, and names the one it does', async () => {
    const { config, ConfigError } = await lambdaConfig({ ...localEnv, MAX_VIDEO_BYTES: 'lots' });
    const c = config();
    expect(c.TABLE_NAME).toBe('vtg-tasks');
    expect(c.PUBLIC_BASE_URL).toBe('http://127.0.0.1:3000');
    expect(c.KEY_CACHE_SECONDS).toBe(60);
    expect(() => c.MAX_VIDEO_BYTES).toThrow(ConfigError);
    expect(() => c.MAX_VIDEO_BYTES).toThrow(/^invalid gateway configuration:\n {2}MAX_VIDEO_BYTES: /);
  });

  it('resolves the catalog on its first read, and a bad entry throws then, naming it', async () => {
    const upstreams = JSON.stringify([{ name: 'r', kind: 'openai', baseUrl: 'https://r.example/v1/' }]);
    const { config } = await lambdaConfig({ ...localEnv, UPSTREAMS: upstreams, MODELS: '{"m":{"durations":[5],"routes":[{"upstream":"nowhere","model":"x"}]}}' });
    const c = config();
    expect(c.BUCKET_NAME).toBe('vtg-videos');
    expect(() => c.catalog).toThrow('MODELS.m.routes[0].upstream: no upstream is named nowhere');
  });

  it('reads the same values parseConfig checks', async () => {
    const { config } = await lambdaConfig({ ...localEnv, TASK_DEADLINE_SECONDS: '600' });
    expect({ ...config() }).toEqual({ ...parseConfig({ ...process.env }) });
  });
});
