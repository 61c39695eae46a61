import * as z from 'zod/mini';
import { lazySchema } from './lazy';

/** The queue messages: archive, notify and poll jobs. */

const attempt = () => z.int().check(z.gte(1));
export const archiveJobSchema = lazySchema(() => z.object({ taskId: z.string(), attempt: attempt() }));
export type ArchiveJob = z.infer<ReturnType<typeof archiveJobSchema>>;

export const notifyJobSchema = lazySchema(() =>
  z.object({
    taskId: z.string(),
    attempt: attempt(),
    /** Epoch ms before which the attempt is not made (retry waits longer than a queue delay). */
    notBefore: z.optional(z.number()),
  }),
);
export type NotifyJob = z.infer<ReturnType<typeof notifyJobSchema>>;

/** The `attempt`-th poll of a task's upstream job; a message whose attempt the task has seen is a duplicate. */
export const pollJobSchema = lazySchema(() => z.object({ taskId: z.string(), attempt: attempt() }));
export type PollJob = z.infer<ReturnType<typeof pollJobSchema>>;
