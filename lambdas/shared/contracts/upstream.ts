import * as z from 'zod/mini';
import { characterSchema, orElse } from './fields';
import { lazySchema } from './lazy';

/**
 * Longest upstream-supplied text the gateway keeps: a message, a job id, a status word, a
 * video URL. Every dialect's schemas cut what they parse to these (`upstreamText`), so no
 * answer of any size can make a task record too large to write. 8 KiB is as long a URL as
 * common web servers take in a request line.
 */
export const upstreamCaps = { message: 500, id: 200, state: 64, url: 8 * 1024 } as const;

export const capText = (text: string, max: number): string => (text.length > max ? text.slice(0, max) : text);

/** A string from an upstream, cut to `max` characters as it is parsed. */
export const upstreamText = (max: number) => z.pipe(z.string(), z.transform((s) => capText(s, max)));

/** A job id, sent as a string or a number. */
const upstreamId = (id: z.ZodMiniType<string | number>) => z.pipe(id, z.transform((v) => capText(String(v), upstreamCaps.id)));

/** The upstream's dialect (duomi): what it is sent, its submit answer, its status and callback body. */

/** What the upstream is sent; the seed's request body with the upstream's model name. */
export const upstreamSubmitBodySchema = lazySchema(() =>
  z.object({
    model: z.string(),
    prompt: z.string(),
    aspect_ratio: z.string(),
    duration: z.number(),
    image_urls: z.optional(z.array(z.string())),
    characters: z.optional(z.array(characterSchema())),
    callback_url: z.string(),
  }),
);
export type UpstreamSubmitBody = z.infer<ReturnType<typeof upstreamSubmitBodySchema>>;

export const upstreamSubmitResponseSchema = lazySchema(() =>
  z.object({
    id: upstreamId(z.union([z.string().check(z.minLength(1)), z.number()])),
  }),
);

/** The upstream's status answer and callback body. Unknown state words are kept as they are (capped). */
export const upstreamStatusSchema = lazySchema(() =>
  z.object({
    id: z.optional(upstreamId(z.union([z.string(), z.number()]))),
    state: upstreamText(upstreamCaps.state),
    progress: z.optional(orElse(z.coerce.number(), 0)),
    data: z.nullish(z.looseObject({ videos: z.nullish(z.array(z.looseObject({ url: upstreamText(upstreamCaps.url) }))) })),
    message: z.nullish(upstreamText(upstreamCaps.message)),
  }),
);
export type UpstreamStatusBody = z.infer<ReturnType<typeof upstreamStatusSchema>>;
