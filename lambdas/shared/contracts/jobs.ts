import * as z from 'zod/mini';

/** The queue messages: archive and notify jobs. */

const attempt = z.int().check(z.gte(1));
export const archiveJobSchema = z.object({ taskId: z.string(), attempt });
export type ArchiveJob = z.infer<typeof archiveJobSchema>;

export const notifyJobSchema = z.object({
  taskId: z.string(),
  attempt,
  /** Epoch ms before which the attempt is not made (retry waits longer than a queue delay). */
  notBefore: z.optional(z.number()),
});
export type NotifyJob = z.infer<typeof notifyJobSchema>;
