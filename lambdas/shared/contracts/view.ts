import * as z from 'zod/mini';
import { lazySchema } from './lazy';

/** A task as clients read it, alone and in a list: the answers of the read side, for the OpenAPI document and the tests. */

export const publicStates = ['pending', 'running', 'succeeded', 'error'] as const;
export const publicStatuses = ['queued', 'in_progress', 'succeeded', 'failed'] as const;
export const publicPhases = ['queued', 'rendering', 'archiving', 'succeeded', 'failed'] as const;

export const taskViewSchema = lazySchema(() =>
  z.object({
    id: z.string(),
    state: z.enum(publicStates),
    progress: z.number(),
    data: z.object({ videos: z.array(z.object({ url: z.string() })) }),
    message: z.string(),
    status: z.enum(publicStatuses),
    phase: z.enum(publicPhases),
    model: z.string(),
    prompt: z.string(),
    aspect_ratio: z.string(),
    duration: z.number(),
    created_at: z.number(),
    updated_at: z.number(),
    completed_at: z.nullable(z.number()),
    /** The id of the task whose video this one remixes (`POST …/{id}/remix`); null for a task made from a prompt. */
    remixed_from: z.nullable(z.string()),
    video: z.nullable(
      z.object({
        url: z.string(),
        expires_at: z.number(),
        bytes: z.number(),
        content_type: z.string(),
        sha256: z.string(),
        /** Measured from the MP4 itself: the movie's duration, the video track's size and codec. */
        duration_seconds: z.optional(z.number()),
        width: z.optional(z.number()),
        height: z.optional(z.number()),
        codec: z.optional(z.string()),
        /** Shorter than the task's `duration` by more than half a second. */
        short: z.optional(z.boolean()),
      }),
    ),
    error: z.nullable(z.object({ code: z.string(), message: z.string() })),
  }),
);
export type TaskView = z.infer<ReturnType<typeof taskViewSchema>>;

export const taskListSchema = lazySchema(() =>
  z.object({
    object: z.literal('list'),
    data: z.array(taskViewSchema()),
    has_more: z.boolean(),
    next_cursor: z.nullable(z.string()),
  }),
);

/** One model of `GET /v1/models`: what a client may send with it, never where it runs. */
export const publicModelSchema = lazySchema(() =>
  z.object({
    id: z.string(),
    object: z.literal('model'),
    durations: z.array(z.number()),
    default_duration: z.number(),
    aspect_ratios: z.array(z.string()),
    default_aspect_ratio: z.string(),
    max_images: z.number(),
    characters: z.boolean(),
  }),
);

export type PublicModel = z.infer<ReturnType<typeof publicModelSchema>>;

export const modelListSchema = lazySchema(() =>
  z.object({
    object: z.literal('list'),
    data: z.array(publicModelSchema()),
  }),
);

const usageFiguresShape = () => ({
  tasks: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  requested_seconds: z.number(),
  delivered_seconds: z.number(),
  cost: z.number(),
});
const limitInForce = () => z.nullable(z.number());

/** `GET /v1/usage`: a key's usage per UTC day or per model, its totals, its limits and what is in use of them. */
export const usageReportSchema = lazySchema(() =>
  z.object({
    object: z.literal('list'),
    start: z.number(),
    end: z.number(),
    group_by: z.enum(['day', 'model']),
    data: z.array(z.object({ day: z.optional(z.string()), model: z.optional(z.string()), ...usageFiguresShape() })),
    totals: z.object(usageFiguresShape()),
    limits: z.object({ concurrent: limitInForce(), rpm: limitInForce(), seconds_per_day: limitInForce(), seconds_per_month: limitInForce() }),
    in_use: z.object({ open_tasks: z.number(), seconds_today: z.number(), seconds_this_month: z.number() }),
  }),
);
export type UsageReport = z.infer<ReturnType<typeof usageReportSchema>>;
