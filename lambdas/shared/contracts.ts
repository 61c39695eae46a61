import JSON5 from 'json5';
import * as z from 'zod/mini';

/**
 * Every shape that crosses a boundary of the gateway: the client API, the task record, the
 * upstream dialect, the queue messages. Handlers, the local runtime, the OpenAPI document
 * and the tests all take their shapes from here.
 *
 * Written with `zod/mini`, whose functions tree-shake: the Lambda bundles carry only the
 * validators they use (full zod would add about 440 KB to each).
 */

export const models = ['sora-2', 'sora-2-pro', 'sora-2-temporary'] as const;
export const modelSchema = z.enum(models, {
  error: (iss) => (iss.input === undefined ? 'model is required' : `model must be one of ${models.join(', ')}`),
});
export type Model = z.infer<typeof modelSchema>;

export const MAX_PROMPT_CHARS = 5000;
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_CHARACTERS = 3;
export const MAX_CHARACTER_SECONDS = 3;

const httpUrl = (what: string) =>
  z.string({ error: () => `${what} must be a string holding an http(s) URL` }).check(
    z.refine(
      (s) => {
        try {
          const u = new URL(s);
          return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
        } catch {
          return false;
        }
      },
      { message: `${what} must be an http(s) URL` },
    ),
  );

/** `"a,b"` in seconds: 0 <= a < b and b - a <= 3. */
const timestamps = z.string({ error: () => 'timestamps must be a string "start,end" in seconds, e.g. "0,3"' }).check(
  z.superRefine((s, ctx) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(s);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'timestamps must be "start,end" in seconds, e.g. "0,3"' });
      return;
    }
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (!(a < b)) ctx.addIssue({ code: 'custom', message: 'timestamps: start must be before end' });
    else if (b - a > MAX_CHARACTER_SECONDS)
      ctx.addIssue({ code: 'custom', message: `timestamps: a character clip is at most ${MAX_CHARACTER_SECONDS} seconds` });
  }),
);

export const characterSchema = z.object({
  url: httpUrl('characters[].url'),
  timestamps,
});
export type Character = z.infer<typeof characterSchema>;

/** `characters` may arrive as an array, or as a string holding one (JSON or the seed's relaxed syntax). */
const charactersField = z.pipe(
  z.transform((v: unknown) => {
    if (typeof v !== 'string') return v;
    if (v.trim() === '') return [];
    try {
      return JSON5.parse(v) as unknown;
    } catch {
      return v;
    }
  }),
  z
    .array(characterSchema, { error: () => 'characters must be an array of {url, timestamps} (or a string holding one)' })
    .check(z.maxLength(MAX_CHARACTERS, { message: `characters holds at most ${MAX_CHARACTERS} entries` })),
);

const durationField = z.pipe(
  z.transform((v: unknown) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v)),
  z.union([z.literal(10), z.literal(15), z.literal(25)], { error: () => 'duration must be 10, 15 or 25' }),
);

/** The client's submit body, as sent (seed dialect). Unknown fields are ignored. */
const submitFields = z
  .object({
    model: modelSchema,
    prompt: z
      .string({ error: (iss) => (iss.input === undefined ? 'prompt is required' : 'prompt must be a string') })
      .check(
        z.trim(),
        z.minLength(1, { message: 'prompt must not be empty' }),
        // Characters as people count them (code points), not UTF-16 units: CJK and emoji count once.
        z.refine((p) => [...p].length <= MAX_PROMPT_CHARS, { message: `prompt is at most ${MAX_PROMPT_CHARS} characters` }),
      ),
    aspect_ratio: z._default(z.enum(['16:9', '9:16'], { error: () => 'aspect_ratio must be "16:9" or "9:16"' }), '16:9'),
    duration: z._default(durationField, 10),
    image_urls: z._default(
      z
        .array(httpUrl('image_urls[]'), { error: () => 'image_urls must be an array of http(s) URLs' })
        .check(z.maxLength(1, { message: 'image_urls holds at most 1 URL' })),
      [],
    ),
    characters: z.optional(charactersField),
    /** Deprecated single-character form, folded into `characters`. */
    character_url: z.optional(httpUrl('character_url')),
    character_timestamps: z.optional(timestamps),
    callback_url: z.optional(httpUrl('callback_url')),
  })
  .check(
    z.superRefine((b, ctx) => {
    if (b.duration === 25 && b.model !== 'sora-2-pro')
      ctx.addIssue({ code: 'custom', path: ['duration'], message: 'duration 25 is only available with sora-2-pro' });
    if (b.character_url !== undefined && b.characters?.length)
      ctx.addIssue({
        code: 'custom',
        path: ['character_url'],
        message: 'send either characters or the deprecated character_url, not both',
      });
    if ((b.character_url === undefined) !== (b.character_timestamps === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [b.character_url === undefined ? 'character_url' : 'character_timestamps'],
        message: 'character_url and character_timestamps go together',
      });
    const count = b.character_url !== undefined ? 1 : (b.characters?.length ?? 0);
    const highest = Math.max(0, ...[...b.prompt.matchAll(/@character(\d+)/g)].map((m) => Number(m[1])));
    if (highest > count)
      ctx.addIssue({
        code: 'custom',
        path: ['prompt'],
        message: `prompt names @character${highest} but ${count} character${count === 1 ? ' is' : 's are'} given`,
      });
    }),
  );

export const submitBodySchema = z.pipe(
  submitFields,
  z.transform(({ character_url, character_timestamps, characters, ...rest }: z.output<typeof submitFields>) => ({
    ...rest,
    characters:
      character_url !== undefined && character_timestamps !== undefined
        ? [{ url: character_url, timestamps: character_timestamps }]
        : (characters ?? []),
    usedDeprecatedFields: character_url !== undefined,
  })),
);
export type SubmitRequest = z.infer<typeof submitBodySchema>;

/** The answer to a submit. */
export const submitResponseSchema = z.object({ id: z.string() });

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

export const errorCodes = [
  'invalid_request',
  'unauthorized',
  'not_found',
  'idempotency_conflict',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'upstream_rejected',
  'upstream_error',
  'upstream_unavailable',
  'internal_error',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    param: z.optional(z.string()),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

// ---- task record (DynamoDB) -------------------------------------------------------------

/** Internal life cycle, in order: a task only ever moves to the right. */
export const taskStates = ['queued', 'submitted', 'in_progress', 'archiving', 'succeeded', 'failed'] as const;
export type TaskState = (typeof taskStates)[number];
export const terminalStates: readonly TaskState[] = ['succeeded', 'failed'];

export const notifyLogEntrySchema = z.object({
  at: z.number(),
  attempt: z.number(),
  outcome: z.string(),
});

export const taskRecordSchema = z.object({
  id: z.string(),
  owner: z.string(),
  state: z.enum(taskStates),
  progress: z.number(),
  model: modelSchema,
  upstream_model: z.string(),
  prompt: z.string(),
  aspect_ratio: z.enum(['16:9', '9:16']),
  duration: z.number(),
  image_urls: z.array(z.string()),
  characters: z.array(characterSchema),
  callback_url: z.optional(z.string()),
  created_at: z.number(),
  updated_at: z.number(),
  completed_at: z.optional(z.number()),
  deadline_at: z.number(),
  /** Last time the upstream told us anything (callback or poll). */
  heard_at: z.optional(z.number()),
  submit_attempts: z.number(),
  upstream_id: z.optional(z.string()),
  upstream_message: z.optional(z.string()),
  upstream_video_url: z.optional(z.string()),
  archive_attempts: z.optional(z.number()),
  archive_lease_until: z.optional(z.number()),
  video_key: z.optional(z.string()),
  video_bytes: z.optional(z.number()),
  video_sha256: z.optional(z.string()),
  video_content_type: z.optional(z.string()),
  error_code: z.optional(z.string()),
  error_message: z.optional(z.string()),
  notify_status: z.optional(z.enum(['pending', 'delivered', 'abandoned'])),
  notify_attempts: z.optional(z.number()),
  notify_first_at: z.optional(z.number()),
  notify_log: z.optional(z.array(notifyLogEntrySchema)),
  /** Present while the gateway still owes the task work; with `due_at`, the reconciler's index. */
  open: z.optional(z.string()),
  due_at: z.optional(z.number()),
  expires_at: z.optional(z.number()),
});
export type TaskRecord = z.infer<typeof taskRecordSchema>;

// ---- task view (what clients read) ------------------------------------------------------

export const publicStates = ['pending', 'running', 'succeeded', 'error'] as const;
export const publicStatuses = ['queued', 'in_progress', 'succeeded', 'failed'] as const;

export const taskViewSchema = z.object({
  id: z.string(),
  state: z.enum(publicStates),
  progress: z.number(),
  data: z.object({ videos: z.array(z.object({ url: z.string() })) }),
  message: z.string(),
  status: z.enum(publicStatuses),
  model: modelSchema,
  prompt: z.string(),
  aspect_ratio: z.string(),
  duration: z.number(),
  created_at: z.number(),
  updated_at: z.number(),
  completed_at: z.nullable(z.number()),
  video: z.nullable(
    z.object({
      url: z.string(),
      expires_at: z.number(),
      bytes: z.number(),
      content_type: z.string(),
      sha256: z.string(),
    }),
  ),
  error: z.nullable(z.object({ code: z.string(), message: z.string() })),
});
export type TaskView = z.infer<typeof taskViewSchema>;

export const taskListSchema = z.object({
  object: z.literal('list'),
  data: z.array(taskViewSchema),
  has_more: z.boolean(),
  next_cursor: z.nullable(z.string()),
});

// ---- upstream dialect (duomi) -----------------------------------------------------------

/** What the upstream is sent; the seed's request body with the upstream's model name. */
export const upstreamSubmitBodySchema = z.object({
  model: z.string(),
  prompt: z.string(),
  aspect_ratio: z.string(),
  duration: z.number(),
  image_urls: z.optional(z.array(z.string())),
  characters: z.optional(z.array(characterSchema)),
  callback_url: z.string(),
});
export type UpstreamSubmitBody = z.infer<typeof upstreamSubmitBodySchema>;

export const upstreamSubmitResponseSchema = z.object({
  id: z.pipe(z.union([z.string().check(z.minLength(1)), z.number()]), z.transform(String)),
});

/** The upstream's status answer and callback body. Unknown state words are kept as they are. */
export const upstreamStatusSchema = z.object({
  id: z.optional(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
  state: z.string(),
  progress: z.optional(z.catch(z.coerce.number(), 0)),
  data: z.nullish(z.looseObject({ videos: z.nullish(z.array(z.looseObject({ url: z.string() }))) })),
  message: z.nullish(z.string()),
});
export type UpstreamStatusBody = z.infer<typeof upstreamStatusSchema>;

// ---- queue messages ---------------------------------------------------------------------

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

// ---- errors -----------------------------------------------------------------------------

/** The first problem of a failed parse, as the API reports it: message and offending field. */
export function describeIssue(error: z.core.$ZodError): { message: string; param?: string } {
  const issue = error.issues[0];
  if (!issue) return { message: 'invalid request' };
  const param = formatPath(issue.path);
  return param ? { message: issue.message, param } : { message: issue.message };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}
