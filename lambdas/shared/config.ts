import { z } from 'zod';

/**
 * The whole runtime configuration, read from the environment once. The CDK stack and the
 * local runtime both produce these variables (see `configEnvironment`), so the names
 * and types are agreed in this one place.
 */
const flag = z
  .enum(['true', 'false', '1', '0'])
  .default('false')
  .transform((v) => v === 'true' || v === '1');

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const modelName = z.enum(['sora-2', 'sora-2-pro', 'sora-2-temporary']);

export const configSchema = z
  .object({
    TABLE_NAME: z.string().min(1),
    BUCKET_NAME: z.string().min(1),
    ARCHIVE_QUEUE_URL: z.string().url(),
    NOTIFY_QUEUE_URL: z.string().url(),
    /** Base URL the upstream calls back (the API's own URL, no trailing slash). */
    PUBLIC_BASE_URL: z.string().url().transform((u) => u.replace(/\/+$/, '')),

    UPSTREAM_PROVIDER: z.enum(['simulated', 'duomi']).default('duomi'),
    UPSTREAM_BASE_URL: z.string().url().transform((u) => u.replace(/\/+$/, '')),
    /** In AWS the upstream key and the callback secret come from Secrets Manager ... */
    UPSTREAM_KEY_SECRET_ARN: z.string().optional(),
    CALLBACK_SECRET_ARN: z.string().optional(),
    /** ... locally they are plain values kept under `.data/`. */
    UPSTREAM_KEY: z.string().optional(),
    CALLBACK_SECRET: z.string().optional(),

    /** Local mode lets the gateway fetch loopback http URLs (the simulated upstream). */
    LOCAL_MODE: flag,
    DYNAMODB_ENDPOINT: z.string().url().optional(),
    S3_ENDPOINT: z.string().url().optional(),
    SQS_ENDPOINT: z.string().url().optional(),

    DISABLED_MODELS: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((m) => m.trim()).filter(Boolean))
      .pipe(z.array(modelName)),
    /** JSON object: gateway model name -> upstream model name. */
    MODEL_MAP: z
      .string()
      .default('{}')
      .transform((s, ctx) => {
        try {
          return JSON.parse(s) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'MODEL_MAP must be a JSON object' });
          return z.NEVER;
        }
      })
      .pipe(z.partialRecord(modelName, z.string().min(1))),

    PRESIGN_TTL_SECONDS: seconds(3600),
    TASK_DEADLINE_SECONDS: seconds(7200),
    /** A task with no word from the upstream for this long is polled. */
    SILENT_AFTER_SECONDS: seconds(300),
    /** Delay before the first resubmission of a task the upstream did not take. */
    RESUBMIT_BASE_SECONDS: seconds(30),
    ARCHIVE_MAX_ATTEMPTS: seconds(5),
    NOTIFY_RETRY_SECONDS: seconds(26 * 3600),
    TASK_RETENTION_DAYS: seconds(30),
    MAX_VIDEO_BYTES: z.coerce.number().int().positive().default(2 * 1024 ** 3),
    UPSTREAM_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    KEY_CACHE_SECONDS: z.coerce.number().int().nonnegative().default(60),
  })
  // `when` makes these run even when other variables are missing, so one message names them all.
  .refine((c) => c.UPSTREAM_KEY_SECRET_ARN || c.UPSTREAM_KEY !== undefined, {
    message: 'set UPSTREAM_KEY_SECRET_ARN (AWS) or UPSTREAM_KEY (local)',
    path: ['UPSTREAM_KEY'],
    when: () => true,
  })
  .refine((c) => c.CALLBACK_SECRET_ARN || c.CALLBACK_SECRET, {
    message: 'set CALLBACK_SECRET_ARN (AWS) or CALLBACK_SECRET (local)',
    path: ['CALLBACK_SECRET'],
    when: () => true,
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigEnvironment = Partial<Record<keyof z.input<typeof configSchema>, string>>;

export class ConfigError extends Error {}

/** Parse an environment; throws one message listing every missing or malformed variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid gateway configuration:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use and kept. */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
