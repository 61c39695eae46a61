import { z } from 'zod';
import type { ZodMiniType, output as zOutput } from 'zod/mini';
import { CatalogError, type Catalog } from '../lambdas/shared/catalog';
import { catalogOf, configSchema } from '../lambdas/shared/config';
import { MAX_DUE_SHARDS } from '../lambdas/shared/table-schema';

/**
 * What one deployment (stage) of the gateway may choose. `bin/app.ts` reads it from CDK
 * context (`-c upstreamBaseUrl=...`, or `cdk.json`) and from the environment, where the
 * variables carry the same names as the runtime configuration (`UPSTREAM_BASE_URL`,
 * `MODEL_MAP`, ...). Context wins over the environment; unset values take the runtime
 * configuration's own defaults, so the two cannot disagree about them.
 */

const runtime = configSchema().shape;

/** The runtime schema's default for a variable, so defaults live in config.ts only. */
const runtimeDefault = <S extends ZodMiniType>(schema: S): NonNullable<zOutput<S>> => schema.parse(undefined) as NonNullable<zOutput<S>>;

const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** `modelMap` may come as a JSON string (CLI, environment) or an object (cdk.json). */
const modelMap = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .default('{}')
  .transform((v) => (typeof v === 'string' ? v : JSON.stringify(v)))
  .superRefine((json, ctx) => {
    const result = runtime.MODEL_MAP.safeParse(json);
    if (!result.success) ctx.addIssue({ code: 'custom', message: result.error.issues.map((i) => i.message).join('; ') });
  });

/** `defaultLimits`: the limits of keys without their own (`{"concurrent":10,"rpm":60}`), as JSON text or an object. */
const defaultLimits = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .default('{}')
  .transform((v) => (typeof v === 'string' ? v : JSON.stringify(v)))
  .superRefine((json, ctx) => {
    const result = runtime.DEFAULT_LIMITS.safeParse(json);
    if (!result.success) ctx.addIssue({ code: 'custom', message: result.error.issues.map((i) => i.message).join('; ') });
  });

/** The submit Lambda calls an upstream inside the HTTP API's 30 s integration limit. */
const maxUpstreamTimeoutMs = 20_000;

/** `upstreams` and `models`: JSON text (`-c`, environment) or the value itself (cdk.json), kept as text for the Lambdas. */
const catalogJson = z
  .union([z.string(), z.array(z.unknown()), z.record(z.string(), z.unknown())])
  .transform((v) => (typeof v === 'string' ? v : JSON.stringify(v)))
  .optional();

/** A secret the operator already has (complete ARN, with its 6-character suffix). */
const secretArn = z
  .string()
  .regex(
    /^arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/,
    'must be the complete ARN of a Secrets Manager secret (ending in -XXXXXX)',
  );

/** `upstreamSecretArns`: `{"<upstream name>": "<secret ARN>"}`, as JSON text or an object. */
const upstreamSecretArns = z
  .union([z.string(), z.record(z.string(), z.unknown())])
  .default({})
  .transform((v, ctx) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object: upstream name -> secret ARN' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string(), secretArn));

/** Upstream kinds that sign in with an API key, kept in a Secrets Manager secret of their own in AWS; Bedrock uses the Lambda's role. */
export const keyedUpstream = (u: { kind: string }) => u.kind !== 'bedrock' && u.kind !== 'simulated';

/** `disabledModels` may come as a comma-separated string or a list. */
const disabledModels = z
  .union([z.string(), z.array(z.string())])
  .default('')
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((m) => m.trim()).filter(Boolean).join(','))
  .superRefine((csv, ctx) => {
    const result = runtime.DISABLED_MODELS.safeParse(csv);
    if (!result.success) ctx.addIssue({ code: 'custom', message: 'unknown model name' });
  });

const stageSettingsSchema = z
  .object({
    /** Suffixes the stack name, so several stages can live in one account. */
    stage: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,31}$/, 'letters, digits and dashes, starting with a letter')
      .optional(),
    upstreamProvider: z
      .enum(['simulated', 'duomi'])
      .default(runtimeDefault(runtime.UPSTREAM_PROVIDER))
      .refine((p) => p !== 'simulated', {
        message: 'the simulated upstream only runs on loopback, next to `npm start`',
      }),
    upstreamBaseUrl: z
      .url({ protocol: /^https$/, error: 'must be an https URL (the upstream key travels in a header)' })
      .default('https://duomiapi.com'),
    /** The shorthand upstream's key: a secret the operator already has. */
    upstreamKeySecretArn: secretArn.optional(),
    /** The operator's upstreams and model catalog: the JSON of UPSTREAMS and MODELS (lambdas/shared/catalog.ts). */
    upstreams: catalogJson,
    models: catalogJson,
    /** Keyed upstreams whose key is in a secret the operator already has; the others get a new secret each. */
    upstreamSecretArns,
    modelMap,
    disabledModels,
    defaultLimits,
    presignTtlSeconds: count(runtimeDefault(runtime.PRESIGN_TTL_SECONDS)),
    taskDeadlineSeconds: count(runtimeDefault(runtime.TASK_DEADLINE_SECONDS)),
    silentAfterSeconds: count(runtimeDefault(runtime.SILENT_AFTER_SECONDS)),
    resubmitBaseSeconds: count(runtimeDefault(runtime.RESUBMIT_BASE_SECONDS)),
    // SQS allows at most 1000 receives before a message goes to the dead-letter queue.
    archiveMaxAttempts: count(runtimeDefault(runtime.ARCHIVE_MAX_ATTEMPTS)).pipe(z.number().max(1000)),
    notifyRetrySeconds: count(runtimeDefault(runtime.NOTIFY_RETRY_SECONDS)),
    taskRetentionDays: count(runtimeDefault(runtime.TASK_RETENTION_DAYS)),
    maxVideoBytes: count(runtimeDefault(runtime.MAX_VIDEO_BYTES)),
    upstreamTimeoutMs: count(runtimeDefault(runtime.UPSTREAM_TIMEOUT_MS)).pipe(
      z.number().max(maxUpstreamTimeoutMs, `at most ${maxUpstreamTimeoutMs}: submit must answer within the 30 s API limit`),
    ),
    // The notify Lambda's timeout grows with this (ten webhooks per batch, one after another).
    webhookTimeoutMs: count(runtimeDefault(runtime.WEBHOOK_TIMEOUT_MS)).pipe(
      z.number().max(30_000, 'at most 30000: a client endpoint gets 30 s to answer a webhook'),
    ),
    keyCacheSeconds: z.coerce.number().int().nonnegative().default(runtimeDefault(runtime.KEY_CACHE_SECONDS)),
    // Poll-only upstreams: one delayed SQS message per poll, and SQS delays stop at 900 s.
    pollFirstSeconds: count(runtimeDefault(runtime.POLL_FIRST_SECONDS)).pipe(z.number().max(900)),
    pollMaxSeconds: count(runtimeDefault(runtime.POLL_MAX_SECONDS)).pipe(z.number().max(900)),
    ambiguousWaitSeconds: count(runtimeDefault(runtime.AMBIGUOUS_WAIT_SECONDS)),
    findJobAfterSeconds: count(runtimeDefault(runtime.FIND_JOB_AFTER_SECONDS)),
    circuitFailures: count(runtimeDefault(runtime.CIRCUIT_FAILURES)),
    circuitCoolDownSeconds: count(runtimeDefault(runtime.CIRCUIT_COOL_DOWN_SECONDS)),
    dueShards: count(runtimeDefault(runtime.DUE_SHARDS)).pipe(z.number().max(MAX_DUE_SHARDS)),
    /** Steady-state requests per second and burst for the whole HTTP API stage. */
    throttleRateLimit: count(50),
    throttleBurstLimit: count(100),
    /**
     * Keep the `byOwner` index (all attributes) beside `byOwnerKeys` for one deploy: a stack
     * deployed with it upgrades in two steps, as CloudFormation adds or removes one index per update.
     */
    legacyOwnerIndex: z
      .union([z.boolean(), z.enum(['true', 'false'])])
      .transform((v) => v === true || v === 'true')
      .default(false),
    /** The failed-ratio alarm fires above this share of the tasks that ended in 15 minutes. */
    failedRatioAlarm: z.coerce.number().gt(0).lte(1).default(0.2),
  })
  .refine((c) => c.throttleBurstLimit >= c.throttleRateLimit, {
    message: 'must be at least throttleRateLimit',
    path: ['throttleBurstLimit'],
  });
type StageSettings = z.infer<typeof stageSettingsSchema>;

/** The settings and the catalog they make; a bad catalog entry is one problem, named by its message. */
export const stageConfigSchema = stageSettingsSchema.transform((c, ctx) => {
  try {
    return { ...c, catalog: cloudCatalog(c) };
  } catch (error) {
    if (!(error instanceof CatalogError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
    return z.NEVER;
  }
});

/**
 * The catalog the Lambdas will read, resolved by the runtime's own code (config.ts), then
 * held to what the cloud allows: no key in the template, no loopback upstream, https only.
 */
function cloudCatalog(c: StageSettings): Catalog {
  const { catalog } = catalogOf({
    UPSTREAMS: c.upstreams,
    MODELS: c.models,
    UPSTREAM_PROVIDER: c.upstreamProvider,
    UPSTREAM_BASE_URL: c.upstreamBaseUrl,
    UPSTREAM_KEY: undefined,
    UPSTREAM_KEY_SECRET_ARN: undefined,
    UPSTREAM_SECRET_ARNS: {},
    MODEL_MAP: runtime.MODEL_MAP.parse(c.modelMap),
    DISABLED_MODELS: runtime.DISABLED_MODELS.parse(c.disabledModels),
  });
  if (c.upstreams && c.upstreamKeySecretArn)
    throw new CatalogError('upstreamKeySecretArn is the shorthand upstream\'s secret: with upstreams set, name each existing secret in upstreamSecretArns {"<upstream>": "<ARN>"}');
  for (const [i, u] of catalog.upstreams.entries()) {
    const at = c.upstreams ? `upstreams[${i}] (${u.name})` : 'upstreamProvider';
    if (u.kind === 'simulated') throw new CatalogError(`${at}: the simulated upstream only runs on loopback, next to \`npm start\``);
    if (u.apiKey !== undefined)
      throw new CatalogError(`${at}: apiKey is for local use; in AWS the key goes in the upstream's own secret (aws secretsmanager put-secret-value, see the stack outputs)`);
    if (u.webhookSecret !== undefined) throw new CatalogError(`${at}: webhookSecret is for local use; the stack does not carry it into AWS`);
    if (u.timeoutMs !== undefined && u.timeoutMs > maxUpstreamTimeoutMs)
      throw new CatalogError(`${at}: timeoutMs at most ${maxUpstreamTimeoutMs}: submit must answer within the 30 s API limit`);
    if (u.baseUrl !== undefined && !u.baseUrl.startsWith('https://'))
      throw new CatalogError(`${at}: baseUrl must be an https URL (the upstream key travels in a header)`);
  }
  for (const name of Object.keys(c.upstreamSecretArns)) {
    const upstream = catalog.upstreams.find((u) => u.name === name);
    if (!upstream) throw new CatalogError(`upstreamSecretArns.${name}: no upstream is named ${name}`);
    if (!keyedUpstream(upstream)) throw new CatalogError(`upstreamSecretArns.${name}: a ${upstream.kind} upstream takes no key`);
  }
  return catalog;
}

export type StageConfig = z.infer<typeof stageConfigSchema>;
export type StageConfigInput = z.input<typeof stageConfigSchema>;

/** Each stage setting and the environment variable that may also carry it. */
export const stageConfigEnvironmentNames = {
  upstreamProvider: 'UPSTREAM_PROVIDER',
  upstreamBaseUrl: 'UPSTREAM_BASE_URL',
  upstreamKeySecretArn: 'UPSTREAM_KEY_SECRET_ARN',
  upstreams: 'UPSTREAMS',
  models: 'MODELS',
  upstreamSecretArns: 'UPSTREAM_SECRET_ARNS',
  modelMap: 'MODEL_MAP',
  disabledModels: 'DISABLED_MODELS',
  defaultLimits: 'DEFAULT_LIMITS',
  presignTtlSeconds: 'PRESIGN_TTL_SECONDS',
  taskDeadlineSeconds: 'TASK_DEADLINE_SECONDS',
  silentAfterSeconds: 'SILENT_AFTER_SECONDS',
  resubmitBaseSeconds: 'RESUBMIT_BASE_SECONDS',
  archiveMaxAttempts: 'ARCHIVE_MAX_ATTEMPTS',
  notifyRetrySeconds: 'NOTIFY_RETRY_SECONDS',
  taskRetentionDays: 'TASK_RETENTION_DAYS',
  maxVideoBytes: 'MAX_VIDEO_BYTES',
  upstreamTimeoutMs: 'UPSTREAM_TIMEOUT_MS',
  webhookTimeoutMs: 'WEBHOOK_TIMEOUT_MS',
  keyCacheSeconds: 'KEY_CACHE_SECONDS',
  pollFirstSeconds: 'POLL_FIRST_SECONDS',
  pollMaxSeconds: 'POLL_MAX_SECONDS',
  ambiguousWaitSeconds: 'AMBIGUOUS_WAIT_SECONDS',
  findJobAfterSeconds: 'FIND_JOB_AFTER_SECONDS',
  circuitFailures: 'CIRCUIT_FAILURES',
  circuitCoolDownSeconds: 'CIRCUIT_COOL_DOWN_SECONDS',
  dueShards: 'DUE_SHARDS',
  throttleRateLimit: 'THROTTLE_RATE_LIMIT',
  throttleBurstLimit: 'THROTTLE_BURST_LIMIT',
  failedRatioAlarm: 'FAILED_RATIO_ALARM',
  legacyOwnerIndex: 'LEGACY_OWNER_INDEX',
} as const satisfies Partial<Record<keyof StageConfigInput, string>>;

export class StageConfigError extends Error {}

/** Validate a stage configuration; throws one message listing every problem. */
export function parseStageConfig(input: Record<string, unknown>): StageConfig {
  const result = stageConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
    throw new StageConfigError(`invalid stage configuration:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

/**
 * The stage configuration from CDK context (`tryGetContext`) and the environment.
 * Empty strings count as unset, so `FOO= cdk synth` falls back to the default.
 */
export function readStageConfig(
  tryGetContext: (key: string) => unknown,
  env: Record<string, string | undefined> = process.env,
): StageConfig {
  const input: Record<string, unknown> = {};
  const given = (v: unknown) => v !== undefined && v !== null && v !== '';
  const stage = tryGetContext('stage');
  if (given(stage)) input.stage = stage;
  for (const [key, envName] of Object.entries(stageConfigEnvironmentNames)) {
    const fromContext = tryGetContext(key);
    const value = given(fromContext) ? fromContext : env[envName];
    if (given(value)) input[key] = value;
  }
  return parseStageConfig(input);
}

/** `VideoTaskGateway`, or `VideoTaskGateway-<stage>`. */
export const stackName = (config: Pick<StageConfig, 'stage'>) =>
  config.stage ? `VideoTaskGateway-${config.stage}` : 'VideoTaskGateway';
