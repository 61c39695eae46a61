import * as z from 'zod/mini';
import { limitsSchema } from './contracts/limits';
import { CatalogError, parseModels, parseUpstreams, seedCatalogModels, type Catalog, type UpstreamConfig } from './catalog';
import { DEFAULT_DUE_SHARDS, MAX_DUE_SHARDS } from './table-schema';

/**
 * The whole runtime configuration, read from the environment once. The CDK stack and the
 * local runtime both produce these variables (see `configEnvironment`), so the names
 * and types are agreed in this one place.
 */
const flag = z.pipe(
  z._default(z.enum(['true', 'false', '1', '0']), 'false'),
  z.transform((v) => v === 'true' || v === '1'),
);

const whole = (min: number) => z.coerce.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.gte(min));
/** One schema for every positive count: each field adds only its default (a cold start builds fewer schemas). */
const positive = whole(1);
const seconds = (fallback: number) => z._default(positive, fallback);
/** A variable holding JSON (default `{}`), parsed; text that is not JSON is refused naming the variable. */
const jsonText = (name: string) =>
  z.pipe(
    z._default(z.string(), '{}'),
    z.transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.issues.push({ code: 'custom', message: `${name} must be a JSON object`, input: s });
        return z.NEVER;
      }
    }),
  );
const url = z.url();
/** A URL with any trailing slash removed, so paths can be appended. */
const baseUrl = z.pipe(url, z.transform((u) => u.replace(/\/+$/, '')));

const modelName = z.enum(['sora-2', 'sora-2-pro', 'sora-2-temporary']);

export const configSchema = z
  .object({
    TABLE_NAME: z.string().check(z.minLength(1)),
    BUCKET_NAME: z.string().check(z.minLength(1)),
    ARCHIVE_QUEUE_URL: url,
    NOTIFY_QUEUE_URL: url,
    /** Per-task delayed poll messages for upstreams that never call back. */
    POLL_QUEUE_URL: url,
    /** Base URL the upstream calls back (the API's own URL, no trailing slash). */
    PUBLIC_BASE_URL: baseUrl,

    /** JSON array of the operator's upstreams (see catalog.ts); unset: the one upstream below. */
    UPSTREAMS: z.optional(z.string().check(z.minLength(1))),
    /** JSON object, the model catalog (see catalog.ts); unset: the seed's models on the first upstream. */
    MODELS: z.optional(z.string().check(z.minLength(1))),
    /** JSON object: upstream name -> ARN of the Secrets Manager secret holding its key (AWS). */
    UPSTREAM_SECRET_ARNS: z.pipe(
      z._default(z.string(), '{}'),
      z.pipe(
        z.transform((s: string, ctx) => {
          try {
            return JSON.parse(s) as unknown;
          } catch {
            ctx.issues.push({ code: 'custom', message: 'UPSTREAM_SECRET_ARNS must be a JSON object', input: s });
            return z.NEVER;
          }
        }),
        z.record(z.string(), z.string().check(z.minLength(1))),
      ),
    ),

    /** The older single-upstream settings: the one upstream when UPSTREAMS is unset. */
    UPSTREAM_PROVIDER: z._default(z.enum(['simulated', 'duomi']), 'duomi'),
    UPSTREAM_BASE_URL: z.optional(baseUrl),
    /** In AWS the upstream key and the callback secret come from Secrets Manager ... */
    UPSTREAM_KEY_SECRET_ARN: z.optional(z.string()),
    CALLBACK_SECRET_ARN: z.optional(z.string()),
    /** ... locally they are plain values kept under `.data/`. */
    UPSTREAM_KEY: z.optional(z.string()),
    CALLBACK_SECRET: z.optional(z.string()),

    /** Local mode lets the gateway fetch loopback http URLs (the simulated upstream). */
    LOCAL_MODE: flag,
    DYNAMODB_ENDPOINT: z.optional(url),
    S3_ENDPOINT: z.optional(url),
    SQS_ENDPOINT: z.optional(url),

    DISABLED_MODELS: z.pipe(
      z.pipe(
        z._default(z.string(), ''),
        z.transform((s) => s.split(',').map((m) => m.trim()).filter(Boolean)),
      ),
      z.array(modelName),
    ),
    /** JSON object: gateway model name -> upstream model name. */
    MODEL_MAP: z.pipe(
      jsonText('MODEL_MAP'),
      z.partialRecord(modelName, z.string().check(z.minLength(1))),
    ),

    PRESIGN_TTL_SECONDS: seconds(3600),
    TASK_DEADLINE_SECONDS: seconds(7200),
    /** A task with no word from the upstream for this long is polled. */
    SILENT_AFTER_SECONDS: seconds(300),
    /** Delay before the first resubmission of a task the upstream did not take. */
    RESUBMIT_BASE_SECONDS: seconds(30),
    ARCHIVE_MAX_ATTEMPTS: seconds(5),
    /** Poll-only upstreams: the first poll this long after submit, then doubling up to the ceiling (SQS delays stop at 900 s). */
    POLL_FIRST_SECONDS: seconds(5),
    POLL_MAX_SECONDS: z._default(positive.check(z.lte(900)), 60),
    /** After an ambiguous submit, how long the task stays with that upstream when it cannot be asked for its jobs. */
    AMBIGUOUS_WAIT_SECONDS: seconds(600),
    /** After an ambiguous submit to an upstream that can be asked, when to ask it. */
    FIND_JOB_AFTER_SECONDS: seconds(10),
    /** Consecutive failed calls that open an upstream's circuit, and how long it stays open before a probe. */
    CIRCUIT_FAILURES: seconds(5),
    CIRCUIT_COOL_DOWN_SECONDS: seconds(60),
    /**
     * How many index key values open tasks are spread over (`open#0…`), so that no one
     * DynamoDB partition takes every task's writes; readers read all of them (up to 32),
     * so the count may be changed at any time.
     */
    DUE_SHARDS: z._default(whole(1).check(z.lte(MAX_DUE_SHARDS)), DEFAULT_DUE_SHARDS),
    NOTIFY_RETRY_SECONDS: seconds(26 * 3600),
    TASK_RETENTION_DAYS: seconds(30),
    MAX_VIDEO_BYTES: z._default(positive, 2 * 1024 ** 3),
    UPSTREAM_TIMEOUT_MS: z._default(positive, 15_000),
    WEBHOOK_TIMEOUT_MS: z._default(positive, 10_000),
    KEY_CACHE_SECONDS: z._default(whole(0), 60),
    /** JSON object: the limits of keys without their own, e.g. {"concurrent":5,"rpm":60,"seconds_per_day":600}. */
    DEFAULT_LIMITS: z.pipe(
      jsonText('DEFAULT_LIMITS'),
      z.strictObject(limitsSchema.shape),
    ),
  })
  .check(
    // `when` makes these run even when other variables are missing, so one message names them all.
    z.refine((c) => Boolean(c.UPSTREAMS || c.UPSTREAM_BASE_URL), {
      message: 'set UPSTREAMS, or UPSTREAM_BASE_URL for the one upstream',
      path: ['UPSTREAM_BASE_URL'],
      when: () => true,
    }),
    z.refine((c) => Boolean(c.UPSTREAMS || c.UPSTREAM_KEY_SECRET_ARN || c.UPSTREAM_KEY !== undefined), {
      message: 'set UPSTREAM_KEY_SECRET_ARN (AWS) or UPSTREAM_KEY (local)',
      path: ['UPSTREAM_KEY'],
      when: () => true,
    }),
    z.refine((c) => Boolean(c.CALLBACK_SECRET_ARN || c.CALLBACK_SECRET), {
      message: 'set CALLBACK_SECRET_ARN (AWS) or CALLBACK_SECRET (local)',
      path: ['CALLBACK_SECRET'],
      when: () => true,
    }),
  );

export type Config = z.infer<typeof configSchema> & {
  /** The upstreams and the model catalog, from UPSTREAMS and MODELS or the single-upstream settings. */
  catalog: Catalog;
};
/** The variables that make the catalog. */
export type CatalogSettings = Pick<
  z.infer<typeof configSchema>,
  'UPSTREAMS' | 'MODELS' | 'UPSTREAM_PROVIDER' | 'UPSTREAM_BASE_URL' | 'UPSTREAM_KEY' | 'UPSTREAM_KEY_SECRET_ARN' | 'UPSTREAM_SECRET_ARNS' | 'MODEL_MAP' | 'DISABLED_MODELS'
>;
export type ConfigEnvironment = Partial<Record<keyof z.input<typeof configSchema>, string>>;

export class ConfigError extends Error {}

/** Parse an environment; throws one message listing every missing or malformed variable, or the bad catalog entry. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = readConfig(env);
  void parsed.catalog; // read now, so that a bad catalog entry is reported here
  return parsed;
}

/**
 * The variables parsed now, the catalog (UPSTREAMS, MODELS and the secrets of its upstreams)
 * resolved when first read, then kept: a Lambda that never routes a task never parses it.
 * `cdk synth` and `npm start` have refused a bad catalog before any Lambda reads it; should
 * one get through, its first read throws the same ConfigError naming the entry.
 */
function readConfig(env: Record<string, string | undefined>): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid gateway configuration:\n  ${problems.join('\n  ')}`);
  }
  const settings = result.data;
  let resolved: ReturnType<typeof catalogOf> | undefined;
  const resolve = () => {
    try {
      resolved ??= catalogOf(settings);
    } catch (error) {
      if (error instanceof CatalogError) throw new ConfigError(`invalid gateway configuration:\n  ${error.message}`);
      throw error;
    }
    return resolved;
  };
  return Object.defineProperties({ ...settings } as Config, {
    catalog: { get: () => resolve().catalog, enumerable: true },
    UPSTREAM_SECRET_ARNS: { get: () => resolve().UPSTREAM_SECRET_ARNS, enumerable: true },
  });
}

/**
 * UPSTREAMS and MODELS when set; else the older settings: one upstream named after
 * UPSTREAM_PROVIDER carrying the seed's models (MODEL_MAP, DISABLED_MODELS), its key
 * UPSTREAM_KEY or the secret UPSTREAM_KEY_SECRET_ARN. The CDK stage config (lib/stage-config.ts)
 * resolves its context the same way, so `cdk synth` and the Lambdas agree on the catalog.
 */
export function catalogOf(c: CatalogSettings): Pick<Config, 'catalog' | 'UPSTREAM_SECRET_ARNS'> {
  let upstreams: UpstreamConfig[];
  const secretArns = { ...c.UPSTREAM_SECRET_ARNS };
  if (c.UPSTREAMS) upstreams = parseUpstreams(c.UPSTREAMS);
  else {
    const name = c.UPSTREAM_PROVIDER;
    upstreams = [{ name, kind: c.UPSTREAM_PROVIDER, baseUrl: c.UPSTREAM_BASE_URL!, apiKey: c.UPSTREAM_KEY }];
    if (c.UPSTREAM_KEY_SECRET_ARN) secretArns[name] ??= c.UPSTREAM_KEY_SECRET_ARN;
  }
  if (upstreams.length === 0) throw new CatalogError('invalid UPSTREAMS: the list holds no upstream');
  for (const name of Object.keys(secretArns))
    if (!upstreams.some((u) => u.name === name)) throw new CatalogError(`invalid UPSTREAM_SECRET_ARNS: no upstream is named ${name}`);
  let models;
  if (!c.MODELS) models = seedCatalogModels(upstreams[0]!.name, c.MODEL_MAP, c.DISABLED_MODELS);
  else if (Object.keys(c.MODEL_MAP).length || c.DISABLED_MODELS.length)
    throw new CatalogError(
      'MODEL_MAP and DISABLED_MODELS shape the seed catalog: with MODELS set, give each route its upstream model id and list only the models to serve',
    );
  else models = parseModels(c.MODELS, upstreams);
  return { catalog: { upstreams, models }, UPSTREAM_SECRET_ARNS: secretArns };
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use and kept (its catalog when first read). */
export function config(): Config {
  cached ??= readConfig(process.env);
  return cached;
}
