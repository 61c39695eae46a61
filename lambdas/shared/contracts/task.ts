import * as z from 'zod/mini';
import { aspectRatios } from '../catalog';
import { characterSchema } from './fields';
import { lazySchema } from './lazy';

/** The task record in DynamoDB, and its life cycle. */

/** Internal life cycle, in order: a task only ever moves to the right. */
export const taskStates = ['queued', 'submitted', 'in_progress', 'archiving', 'succeeded', 'failed'] as const;
export type TaskState = (typeof taskStates)[number];
export const terminalStates: readonly TaskState[] = ['succeeded', 'failed'];

const notifyLogEntry = () =>
  z.object({
    at: z.number(),
    attempt: z.number(),
    outcome: z.string(),
  });

/**
 * One try of one route. `outcome`: `submitted` (the upstream took the job), `rejected`,
 * `unavailable` or `ambiguous` (as `UpstreamError`'s kinds), or the router's own words.
 */
/** The still images a video may come with, besides the MP4 (the OpenAI dialect's content variants). */
export const renditionVariants = ['thumbnail', 'spritesheet'] as const;
export type RenditionVariant = (typeof renditionVariants)[number];
export type Renditions = Partial<Record<RenditionVariant, string>>;
const renditions = () => z.object({ thumbnail: z.optional(z.string()), spritesheet: z.optional(z.string()) });

const attempt = () =>
  z.object({
    upstream: z.string(),
    at: z.number(),
    outcome: z.string(),
    message: z.optional(z.string()),
  });
export type Attempt = z.infer<ReturnType<typeof attempt>>;

/** Every record read from the table is parsed by it (built on the first read). */
export const taskRecordSchema = lazySchema(() =>
  z.object({
    id: z.string(),
    owner: z.string(),
    state: z.enum(taskStates),
    progress: z.number(),
    /** The catalog model the client asked for. */
    model: z.string(),
    /** The upstream's own model id, of the route that holds (or last tried) the task. */
    upstream_model: z.string(),
    prompt: z.string(),
    aspect_ratio: z.enum(aspectRatios),
    duration: z.number(),
    /** The client's reference image URLs, as sent. */
    image_urls: z.array(z.string()),
    /** An uploaded reference image's key in the bucket (`inputs/…`): each submit hands the upstream a link signed then. */
    input_image: z.optional(z.string()),
    characters: z.array(characterSchema()),
    callback_url: z.optional(z.string()),
    /** The client API the task was made through: its webhooks speak that dialect (absent: the seed's). */
    dialect: z.optional(z.enum(['seed', 'openai'])),
    /** The OpenAI dialect's `size` as the client sent it, echoed in its Video object. */
    size: z.optional(z.string()),
    /** A remix: the id of the task whose video it remixes. */
    remixed_from: z.optional(z.string()),
    /** A remix: the original's job at the upstream that made it, which that upstream remixes. */
    remix_source_job: z.optional(z.string()),
    created_at: z.number(),
    updated_at: z.number(),
    completed_at: z.optional(z.number()),
    deadline_at: z.number(),
    /** Last time the upstream told us anything (callback or poll). */
    heard_at: z.optional(z.number()),
    submit_attempts: z.number(),
    /** While set and in the future, one worker is handing the task to an upstream; nobody else may. */
    submit_lease_until: z.optional(z.number()),
    /** The operator's name of the upstream holding the task's job (older records: the one upstream). */
    upstream: z.optional(z.string()),
    /** Index in the model's routes of the route serving the task. */
    route: z.optional(z.number()),
    /** Every route tried, in order. */
    attempts: z.optional(z.array(attempt())),
    upstream_id: z.optional(z.string()),
    upstream_message: z.optional(z.string()),
    upstream_video_url: z.optional(z.string()),
    /** Where the upstream offers the video's thumbnail and spritesheet, when its dialect does (OpenAI's content variants). */
    upstream_renditions: z.optional(renditions()),
    /** The upstream's own reported cost in USD for the job (OpenRouter's `usage.cost`), for the usage records. */
    upstream_cost: z.optional(z.number()),
    /** Polls of a poll-only upstream's job so far: the poll chain's position, so a duplicate message is dropped. */
    poll_count: z.optional(z.number()),
    archive_attempts: z.optional(z.number()),
    archive_lease_until: z.optional(z.number()),
    video_key: z.optional(z.string()),
    /** The bucket keys of the renditions archived beside the video. */
    renditions: z.optional(renditions()),
    video_bytes: z.optional(z.number()),
    video_sha256: z.optional(z.string()),
    video_content_type: z.optional(z.string()),
    /** Measured from the stored MP4's boxes: movie duration, the video track's coded size and sample-entry codec. */
    video_duration_seconds: z.optional(z.number()),
    video_width: z.optional(z.number()),
    video_height: z.optional(z.number()),
    video_codec: z.optional(z.string()),
    /** The video is shorter than the task's duration by more than half a second. */
    video_short: z.optional(z.boolean()),
    /** The task's seconds are reserved in its key's usage (`usage.ts`) until it ends; then settled. */
    usage_status: z.optional(z.enum(['reserved', 'settled'])),
    /** The task counts against its key's concurrency limit while open. */
    usage_active: z.optional(z.boolean()),
    /** What the task cost, as settled: delivered seconds times the route's price, or the upstream's own figure. */
    usage_cost: z.optional(z.number()),
    error_code: z.optional(z.string()),
    error_message: z.optional(z.string()),
    notify_status: z.optional(z.enum(['pending', 'delivered', 'abandoned'])),
    notify_attempts: z.optional(z.number()),
    notify_first_at: z.optional(z.number()),
    notify_log: z.optional(z.array(notifyLogEntry())),
    /** Present while the gateway still owes the task work; with `due_at`, the reconciler's index. */
    open: z.optional(z.string()),
    due_at: z.optional(z.number()),
    expires_at: z.optional(z.number()),
  }),
);
export type TaskRecord = z.infer<ReturnType<typeof taskRecordSchema>>;
