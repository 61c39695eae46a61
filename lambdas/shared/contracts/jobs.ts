import * as z from 'zod/mini';

/** The queue messages: archive, notify and poll jobs. */

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

/** The `attempt`-th poll of a task's upstream job; a message whose attempt the task has seen is a duplicate. */
export const pollJobSchema = z.object({ taskId: z.string(), attempt });
export type PollJob = z.infer<typeof pollJobSchema>;
