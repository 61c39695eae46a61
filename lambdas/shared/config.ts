import * as z from 'zod/mini';
import { limitsSchema } from './contracts/limits';
import { lazySchema } from './contracts/lazy';
import { CatalogError, parseModels, parseUpstreams, seedCatalogModels, type Catalog, type UpstreamConfig } from './catalog';
import { DEFAULT_DUE_SHARDS, MAX_DUE_SHARDS } from './table-schema';

/**
 * The whole runtime configuration, read from the environment. The CDK stack and the local
 * runtime both produce these variables (see `configEnvironment`), so the names and types are
 * agreed in this one place. Each variable's schema is built when first needed: `parseConfig`
 * checks them all at once (`npm start`, `cdk synth`, the tests), while a Lambda, whose
 * environment the checked stage configuration wrote, parses each variable when it first
 * reads it: its cold start builds only the few schemas its clients need.
 */
const flag = lazySchema(() =>
  z.pipe(
    z._default(z.enum(['true', 'false', '1', '0']), 'false'),
    z.transform((v) => v === 'true' || v === '1'),
  ),
);

const whole = (min: number) => z.coerce.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.gte(min));
/** One schema for every positive count: each variable adds only its default. */
const positive = lazySchema(() => whole(1));
/** A positive whole number, `fallback` when unset. */
const count = (fallback: number) => () => z._default(positive(), fallback);
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
const url = lazySchema(() => z.url());
/** A URL with any trailing slash removed, so paths can be appended. */
const baseUrl = lazySchema(() => z.pipe(url(), z.transform((u) => u.replace(/\/+$/, ''))));
const nonEmpty = () => z.string().check(z.minLength(1));
const optionalText = () => z.optional(z.string());
const optionalUrl = () => z.optional(url());

const modelName = lazySchema(() => z.enum(['sora-2', 'sora-2-pro', 'sora-2-temporary']));

/** Each variable's schema, as a function that builds it. */
const variables = {
  TABLE_NAME: nonEmpty,
  BUCKET_NAME: nonEmpty,
  ARCHIVE_QUEUE_URL: url,
  NOTIFY_QUEUE_URL: url,
  /** Per-task delayed poll messages for upstreams that never call back. */
  POLL_QUEUE_URL: url,
  /** Base URL the upstream calls back (the API's own URL, no trailing slash). */
  PUBLIC_BASE_URL: baseUrl,

  /** JSON array of the operator's upstreams (see catalog.ts); unset: the one upstream below. */
  UPSTREAMS: () => z.optional(nonEmpty()),
  /** JSON object, the model catalog (see catalog.ts); unset: the seed's models on the first upstream. */
  MODELS: () => z.optional(nonEmpty()),
  /** JSON object: upstream name -> ARN of the Secrets Manager secret holding its key (AWS). */
  UPSTREAM_SECRET_ARNS: () =>
    z.pipe(
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
        z.record(z.string(), nonEmpty()),
      ),
    ),

  /** The older single-upstream settings: the one upstream when UPSTREAMS is unset. */
  UPSTREAM_PROVIDER: () => z._default(z.enum(['simulated', 'duomi']), 'duomi'),
  UPSTREAM_BASE_URL: () => z.optional(baseUrl()),
  /** In AWS the upstream key and the callback secret come from Secrets Manager ... */
  UPSTREAM_KEY_SECRET_ARN: optionalText,
  CALLBACK_SECRET_ARN: optionalText,
  /** ... locally they are plain values kept under `.data/`. */
  UPSTREAM_KEY: optionalText,
  CALLBACK_SECRET: optionalText,

  /** Local mode lets the gateway fetch loopback http URLs (the simulated upstream). */
  LOCAL_MODE: flag,
  DYNAMODB_ENDPOINT: optionalUrl,
  S3_ENDPOINT: optionalUrl,
  SQS_ENDPOINT: optionalUrl,

  DISABLED_MODELS: () =>
    z.pipe(
      z.pipe(
        z._default(z.string(), ''),
        z.transform((s) => s.split(',').map((m) => m.trim()).filter(Boolean)),
      ),
      z.array(modelName()),
    ),
  /** JSON object: gateway model name -> upstream model name. */
  MODEL_MAP: () => z.pipe(jsonText('MODEL_MAP'), z.partialRecord(modelName(), nonEmpty())),

  PRESIGN_TTL_SECONDS: count(3600),
  TASK_DEADLINE_SECONDS: count(7200),
  /** A task with no word from the upstream for this long is polled. */
  SILENT_AFTER_SECONDS: count(300),
  /** Delay before the first resubmission of a task the upstream did not take. */
  RESUBMIT_BASE_SECONDS: count(30),
  ARCHIVE_MAX_ATTEMPTS: count(5),
  /** Poll-only upstreams: the first poll this long after submit, then doubling up to the ceiling (SQS delays stop at 900 s). */
  POLL_FIRST_SECONDS: count(5),
  POLL_MAX_SECONDS: () => z._default(positive().check(z.lte(900)), 60),
  /** After an ambiguous submit, how long the task stays with that upstream when it cannot be asked for its jobs. */
  AMBIGUOUS_WAIT_SECONDS: count(600),
  /** After an ambiguous submit to an upstream that can be asked, when to ask it. */
  FIND_JOB_AFTER_SECONDS: count(10),
  /** Consecutive failed calls that open an upstream's circuit, and how long it stays open before a probe. */
  CIRCUIT_FAILURES: count(5),
  CIRCUIT_COOL_DOWN_SECONDS: count(60),
  /**
   * How many index key values open tasks are spread over (`open#0…`), so that no one
   * DynamoDB partition takes every task's writes; readers read all of them (up to 32),
   * so the count may be changed at any time.
   */
  DUE_SHARDS: () => z._default(positive().check(z.lte(MAX_DUE_SHARDS)), DEFAULT_DUE_SHARDS),
  NOTIFY_RETRY_SECONDS: count(26 * 3600),
  TASK_RETENTION_DAYS: count(30),
  MAX_VIDEO_BYTES: count(2 * 1024 ** 3),
  UPSTREAM_TIMEOUT_MS: count(15_000),
  WEBHOOK_TIMEOUT_MS: count(10_000),
  KEY_CACHE_SECONDS: () => z._default(whole(0), 60),
  /** JSON object: the limits of keys without their own, e.g. {"concurrent":5,"rpm":60,"seconds_per_day":600}. */
  DEFAULT_LIMITS: () => z.pipe(jsonText('DEFAULT_LIMITS'), z.strictObject(limitsSchema.shape)),
};
type Variables = typeof variables;
type VariableName = keyof Variables;
type Shape = { [K in VariableName]: ReturnType<Variables[K]> };
const variableNames = Object.keys(variables) as VariableName[];

/** The whole configuration: every variable, and the rules between them. */
export const configSchema = lazySchema(() =>
  z
    .object(Object.fromEntries(variableNames.map((v) => [v, variables[v]()])) as Shape)
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
    ),
);

type Settings = z.infer<ReturnType<typeof configSchema>>;
export type Config = Settings & {
  /** The upstreams and the model catalog, from UPSTREAMS and MODELS or the single-upstream settings. */
  catalog: Catalog;
};
/** The variables that make the catalog. */
const catalogVariables = [
  'UPSTREAMS',
  'MODELS',
  'UPSTREAM_PROVIDER',
  'UPSTREAM_BASE_URL',
  'UPSTREAM_KEY',
  'UPSTREAM_KEY_SECRET_ARN',
  'UPSTREAM_SECRET_ARNS',
  'MODEL_MAP',
  'DISABLED_MODELS',
] as const satisfies readonly VariableName[];
export type CatalogSettings = Pick<Settings, (typeof catalogVariables)[number]>;
export type ConfigEnvironment = Partial<Record<keyof z.input<ReturnType<typeof configSchema>>, string>>;

export class ConfigError extends Error {}

const invalid = (problems: string[]) => new ConfigError(`invalid gateway configuration:\n  ${problems.join('\n  ')}`);

/** Parse an environment; throws one message listing every missing or malformed variable, or the bad catalog entry. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = configSchema().safeParse(env);
  if (!result.success) throw invalid(result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`));
  const parsed = readConfig((v) => result.data[v]);
  void parsed.catalog; // read now, so that a bad catalog entry is reported here
  return parsed;
}

/** Each variable of `env` parsed with its own schema when first asked for; a bad one throws the ConfigError naming it. */
function lazyVariables(env: Record<string, string | undefined>): <V extends VariableName>(v: V) => Settings[V] {
  return <V extends VariableName>(v: V) => {
    const result = variables[v]().safeParse(env[v]);
    if (!result.success) throw invalid(result.error.issues.map((i) => `${v}: ${i.message}`));
    return result.data as Settings[V];
  };
}

/**
 * The configuration over one way of reading its variables, each read once and kept; the
 * catalog (UPSTREAMS, MODELS and the secrets of its upstreams) is resolved when first read,
 * so a Lambda that never routes a task never parses it. `cdk synth` and `npm start` have
 * refused a bad catalog before any Lambda reads it; should one get through, its first read
 * throws the same ConfigError naming the entry.
 */
function readConfig(read: <V extends VariableName>(v: V) => Settings[V]): Config {
  const c = {} as Config;
  const keep = (key: string, value: () => unknown) =>
    Object.defineProperty(c, key, {
      enumerable: true,
      configurable: true,
      get() {
        const v = value();
        Object.defineProperty(c, key, { value: v, enumerable: true, writable: true });
        return v;
      },
      set(v: unknown) {
        Object.defineProperty(c, key, { value: v, enumerable: true, writable: true });
      },
    });
  const resolved = () => {
    try {
      return catalogOf(Object.fromEntries(catalogVariables.map((v) => [v, read(v)])) as CatalogSettings);
    } catch (error) {
      if (error instanceof CatalogError) throw invalid([error.message]);
      throw error;
    }
  };
  let catalog: ReturnType<typeof catalogOf> | undefined;
  for (const v of variableNames) if (v !== 'UPSTREAM_SECRET_ARNS') keep(v, () => read(v));
  keep('catalog', () => (catalog ??= resolved()).catalog);
  keep('UPSTREAM_SECRET_ARNS', () => (catalog ??= resolved()).UPSTREAM_SECRET_ARNS);
  return c;
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

/** The process's configuration: each variable parsed when first read, and kept. */
export function config(): Config {
  cached ??= readConfig(lazyVariables(process.env));
  return cached;
}
