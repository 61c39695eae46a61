import * as z from 'zod/mini';

/**
 * Limits per API key (`npm run keys -- limits`), and the operator's default for keys without
 * their own (`DEFAULT_LIMITS`): open tasks at once, submits a minute, seconds of video a UTC
 * day and a UTC month. Checked at submit by `usage.ts`.
 */
const limitValue = z.nullable(z.int().check(z.gte(1)));
/** A key's own limits; `null` lifts the operator's default for that key, absent takes it. */
export const limitsSchema = z.object({
  concurrent: z.optional(limitValue),
  rpm: z.optional(limitValue),
  seconds_per_day: z.optional(limitValue),
  seconds_per_month: z.optional(limitValue),
});
export type Limits = z.infer<typeof limitsSchema>;
export type LimitsInForce = Partial<Record<LimitName, number>>;
export const limitNames = ['concurrent', 'rpm', 'seconds_per_day', 'seconds_per_month'] as const;
export type LimitName = (typeof limitNames)[number];

/** The limits in force for a key: its own where it has one, the operator's default otherwise. */
export function effectiveLimits(own: Limits | undefined, defaults: Limits = {}): LimitsInForce {
  const out: LimitsInForce = {};
  for (const name of limitNames) {
    const value = own?.[name] !== undefined ? own[name] : defaults[name];
    if (typeof value === 'number') out[name] = value;
  }
  return out;
}

