import * as z from 'zod/mini';

/** What the read side accepts: the list's query string. */

export const listQuerySchema = z.object({
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
});
