import * as z from 'zod/mini';
import { characterSchema } from './fields';

/** The upstream's dialect (duomi): what it is sent, its submit answer, its status and callback body. */

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
