import * as z from 'zod/mini';
import { lazySchema } from './lazy';

/**
 * The pieces more than one contract is made of: the model names and a character clip,
 * which the client sends, the task record keeps and the upstream is sent.
 */

export const models = ['sora-2', 'sora-2-pro', 'sora-2-temporary'] as const;
export const modelSchema = lazySchema(() =>
  z.enum(models, {
    error: (iss) => (iss.input === undefined ? 'model is required' : `model must be one of ${models.join(', ')}`),
  }),
);
export type Model = z.infer<ReturnType<typeof modelSchema>>;

/**
 * `schema`'s value, or `fallback` when the input does not match it: what `z.catch` does,
 * built from pipe and transform, because `z.catch` reaches zod's helpers through a namespace
 * object that keeps every one of them in each Lambda bundle that has an upstream contract.
 */
export const orElse = <T extends z.ZodMiniType>(schema: T, fallback: z.output<T>) =>
  z.pipe(
    z.unknown(),
    z.transform((input): z.output<T> => {
      const result = schema.safeParse(input);
      return result.success ? result.data : fallback;
    }),
  );

export const MAX_CHARACTER_SECONDS = 3;

export const httpUrl = (what: string) =>
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
export const timestamps = lazySchema(() =>
  z.string({ error: () => 'timestamps must be a string "start,end" in seconds, e.g. "0,3"' }).check(
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
  ),
);

export const characterSchema = lazySchema(() =>
  z.object({
    url: httpUrl('characters[].url'),
    timestamps: timestamps(),
  }),
);
export type Character = z.infer<ReturnType<typeof characterSchema>>;
