import * as z from 'zod/mini';
import { lazySchema } from './lazy';
import { modelOf, type AspectRatio, type Catalog } from '../catalog';
import { listQuerySchema } from './query';

/**
 * The OpenAI Videos dialect (`/v1/videos`): what the official `openai` SDK's `client.videos`
 * sends and reads. A create is translated into the seed dialect's body, so both dialects are
 * checked by the same catalog rules and make the same tasks.
 */

/** `WxH` sizes per aspect ratio, for a Video object whose client sent none. */
export const defaultSizes: Record<AspectRatio, string> = {
  '16:9': '1280x720',
  '9:16': '720x1280',
  '1:1': '1024x1024',
  '4:3': '960x720',
  '3:4': '720x960',
  '21:9': '1680x720',
};

/** How far a size's width/height may be from a ratio and still be it: OpenAI's 1792x1024 is 16:9 within 2 %. */
const RATIO_TOLERANCE = 0.02;

const ratioValue = (r: AspectRatio) => {
  const [w, h] = r.split(':').map(Number);
  return w! / h!;
};

/** The aspect ratio of the model's that a `WxH` size is, or undefined. */
export function ratioOfSize(size: string, ratios: readonly AspectRatio[]): AspectRatio | undefined {
  const m = /^(\d{2,5})x(\d{2,5})$/.exec(size.trim());
  if (!m) return undefined;
  const value = Number(m[1]) / Number(m[2]);
  return ratios.find((r) => Math.abs(value / ratioValue(r) - 1) <= RATIO_TOLERANCE);
}

/** The seed field each OpenAI field becomes, so an error names the field the client sent. */
export const seedToOpenaiParam: Record<string, string> = {
  duration: 'seconds',
  aspect_ratio: 'size',
  image_urls: 'input_reference',
  'image_urls[0]': 'input_reference',
};

/** An OpenAI create's own problem, before the seed rules: message and field. */
export class OpenaiFieldError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * An OpenAI create body (JSON, or multipart fields flattened to strings) as the seed body:
 * `seconds` → `duration`, `size` → the model's `aspect_ratio`, `input_reference[image_url]`
 * (or `input_reference.image_url` in JSON) → `image_urls`. The model's own checks come after.
 */
export function openaiToSeedBody(body: Record<string, unknown>, models: Catalog['models'], imageUrls: string[] = []) {
  const seed: Record<string, unknown> = { model: body.model, prompt: body.prompt };
  if (body.callback_url !== undefined) seed.callback_url = body.callback_url;
  if (body.seconds !== undefined) {
    if (typeof body.seconds !== 'string' && typeof body.seconds !== 'number') throw new OpenaiFieldError('seconds must be a string of digits, e.g. "10"', 'seconds');
    seed.duration = body.seconds;
  }
  const model = typeof body.model === 'string' ? modelOf(models, body.model) : undefined;
  if (body.size !== undefined && model) {
    const ratio = typeof body.size === 'string' ? ratioOfSize(body.size, model.aspectRatios) : undefined;
    if (!ratio)
      throw new OpenaiFieldError(
        `size must be WxH in one of ${model.id}'s aspect ratios (${model.aspectRatios.join(', ')}), e.g. ${model.aspectRatios.map((r) => defaultSizes[r]).join(', ')}`,
        'size',
      );
    seed.aspect_ratio = ratio;
  }
  const reference = body.input_reference;
  const url =
    body['input_reference[image_url]'] ??
    (reference && typeof reference === 'object' ? (reference as Record<string, unknown>).image_url : reference);
  if (url !== undefined) {
    if (typeof url !== 'string') throw new OpenaiFieldError('input_reference must be an image file or {image_url}', 'input_reference');
    imageUrls = [...imageUrls, url];
  }
  if (imageUrls.length) seed.image_urls = imageUrls;
  return seed;
}

export const openaiStatuses = ['queued', 'in_progress', 'completed', 'failed'] as const;

/** The Video object of OpenAI's Videos API. */
export const videoObjectSchema = lazySchema(() =>
  z.object({
    id: z.string(),
    object: z.literal('video'),
    model: z.string(),
    status: z.enum(openaiStatuses),
    progress: z.number(),
    created_at: z.number(),
    completed_at: z.nullable(z.number()),
    expires_at: z.nullable(z.number()),
    prompt: z.string(),
    /** `WxH`: as requested until the video is measured, then the delivered frame size. */
    size: z.string(),
    /** As requested until the video is measured, then its delivered duration (to the hundredth). */
    seconds: z.string(),
    remixed_from_video_id: z.nullable(z.string()),
    error: z.nullable(z.object({ code: z.string(), message: z.string() })),
  }),
);
export type VideoObject = z.infer<ReturnType<typeof videoObjectSchema>>;

export const videoListSchema = lazySchema(() =>
  z.object({
    object: z.literal('list'),
    data: z.array(videoObjectSchema()),
    first_id: z.nullable(z.string()),
    last_id: z.nullable(z.string()),
    has_more: z.boolean(),
  }),
);

export const videoDeletedSchema = lazySchema(() =>
  z.object({ id: z.string(), object: z.literal('video.deleted'), deleted: z.literal(true) }),
);

/** `GET /v1/videos?limit=&after=&order=`: the seed list's query, and its order. */
export const videoListQuerySchema = lazySchema(() =>
  z.extend(listQuerySchema(), {
    order: z._default(z.enum(['asc', 'desc'], { error: () => 'order must be "asc" or "desc"' }), 'desc'),
  }),
);

/** `GET /v1/videos/{id}/content?variant=`. */
export const contentQuerySchema = lazySchema(() =>
  z.object({
    variant: z._default(z.enum(['video', 'thumbnail', 'spritesheet'], { error: () => 'variant must be video, thumbnail or spritesheet' }), 'video'),
  }),
);
