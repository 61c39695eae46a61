import * as z from 'zod/mini';
import { lazySchema } from './lazy';

/** What the read side accepts: the list's query string. */

export const listQuerySchema = lazySchema(() =>
  z.object({
    limit: z._default(
      z.coerce
        .number({ error: () => 'limit must be a number from 1 to 100' })
        .check(
          z.refine(Number.isInteger, { message: 'limit must be a whole number' }),
          z.gte(1, { message: 'limit must be at least 1' }),
          z.lte(100, { message: 'limit is at most 100' }),
        ),
      20,
    ),
    after: z.optional(z.string().check(z.maxLength(64))),
  }),
);

/** Unix seconds, a whole number. */
const unixSeconds = (name: string) =>
  z.optional(
    z.coerce
      .number({ error: () => `${name} must be a Unix time in seconds` })
      .check(z.refine(Number.isInteger, { message: `${name} must be a whole number of seconds` }), z.gte(0, { message: `${name} must be a Unix time in seconds` })),
  );

/** The longest range one usage request may cover: a year and a month of days. */
export const MAX_USAGE_DAYS = 400;

/** `GET /v1/usage?start=&end=&group_by=`: a range of Unix seconds (default: the current UTC month so far) by day or model. */
export const usageQuerySchema = lazySchema(() =>
  z.object({
    start: unixSeconds('start'),
    end: unixSeconds('end'),
    group_by: z._default(z.enum(['day', 'model'], { error: () => 'group_by must be day or model' }), 'day'),
    /** Admin only: one key's usage, by the id `keys list` shows. */
    key_id: z.optional(z.string().check(z.regex(/^[0-9a-f]{12}$/, 'key_id is the 12 hexadecimal characters that keys list shows'))),
  }),
);
export type UsageQuery = z.infer<ReturnType<typeof usageQuerySchema>>;
