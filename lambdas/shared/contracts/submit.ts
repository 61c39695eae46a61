import JSON5 from 'json5';
import * as z from 'zod/mini';
import { characterSchema, httpUrl, modelSchema, timestamps } from './fields';

/**
 * `POST /v1/videos/generations`: the client's body and the answer. The only contract that
 * needs json5 (the seed's relaxed `characters` string), so only the Lambdas that parse or
 * document a submit bundle it.
 */

export const MAX_PROMPT_CHARS = 5000;
export const MAX_CHARACTERS = 3;

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
