import * as z from 'zod/mini';
import { lazySchema } from './lazy';
import { modelOf, seedModelIds, type AspectRatio, type Catalog, type CatalogModel } from '../catalog';
import { characterSchema, httpUrl, timestamps } from './fields';
import { parseRelaxedJson } from './relaxed-json';

/**
 * `POST /v1/videos/generations`: the client's body and the answer.
 */

export const MAX_PROMPT_CHARS = 5000;
export const MAX_CHARACTERS = 3;

/** `characters` may arrive as an array, or as a string holding one (JSON or the seed's relaxed syntax). */
const charactersField = () =>
  z.pipe(
    z.transform((v: unknown) => {
      if (typeof v !== 'string') return v;
      if (v.trim() === '') return [];
      try {
        return parseRelaxedJson(v);
      } catch {
        return v;
      }
    }),
    z
      .array(characterSchema(), { error: () => 'characters must be an array of {url, timestamps} (or a string holding one)' })
      .check(z.maxLength(MAX_CHARACTERS, { message: `characters holds at most ${MAX_CHARACTERS} entries` })),
  );

/** `a, b or c` */
const oneOf = (values: readonly (string | number)[]) =>
  values.length === 1 ? String(values[0]) : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
const quoted = (values: readonly string[]) => oneOf(values.map((v) => `"${v}"`));

/** A duration sent as a number or as its digits; anything else is kept as is (and refused). */
const asDuration = (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v);

/** The other models of the catalog that would take this value, for a helpful message. */
const takenBy = (models: Catalog['models'], except: string, takes: (m: CatalogModel) => boolean) =>
  Object.values(models).filter((m) => m.id !== except && takes(m)).map((m) => m.id);

function unknownModel(models: Catalog['models'], model: string): string {
  // The seed's names stay known words: an operator may have left one out of the catalog.
  if (seedModelIds.includes(model)) return `model ${model} is not available on this gateway`;
  return `model must be one of ${Object.keys(models).join(', ')}`;
}

/** A prompt: required, not blank once trimmed, at most `MAX_PROMPT_CHARS` characters (a create's and a remix's). */
export const promptField = () =>
  z
    .string({ error: (iss) => (iss.input === undefined ? 'prompt is required' : 'prompt must be a string') })
    .check(
      z.trim(),
      z.minLength(1, { message: 'prompt must not be empty' }),
      // Characters as people count them (code points), not UTF-16 units: CJK and emoji count once.
      z.refine((p) => [...p].length <= MAX_PROMPT_CHARS, { message: `prompt is at most ${MAX_PROMPT_CHARS} characters` }),
    );

function submitFields(models: Catalog['models']) {
  return z
    .object({
      model: z
        .string({ error: (iss) => (iss.input === undefined ? 'model is required' : unknownModel(models, '')) })
        .check(
          z.superRefine((m, ctx) => {
            if (!Object.hasOwn(models, m)) ctx.addIssue({ code: 'custom', message: unknownModel(models, m) });
          }),
        ),
      prompt: promptField(),
      /** Checked against the model's entry below; the model's default when absent. */
      aspect_ratio: z.optional(z.unknown()),
      duration: z.optional(z.unknown()),
      image_urls: z._default(z.array(httpUrl('image_urls[]'), { error: () => 'image_urls must be an array of http(s) URLs' }), []),
      characters: z.optional(charactersField()),
      /** Deprecated single-character form, folded into `characters`. */
      character_url: z.optional(httpUrl('character_url')),
      character_timestamps: z.optional(timestamps()),
      callback_url: z.optional(httpUrl('callback_url')),
    })
    .check(
      z.superRefine((b, ctx) => {
        const model = modelOf(models, b.model);
        if (!model) return; // already reported on model
        const duration = asDuration(b.duration);
        if (duration !== undefined && !model.durations.includes(duration as number)) {
          const others = typeof duration === 'number' ? takenBy(models, model.id, (m) => m.durations.includes(duration)) : [];
          ctx.addIssue({
            code: 'custom',
            path: ['duration'],
            message: others.length
              ? `duration ${duration} is only available with ${others.join(', ')} (${model.id} takes ${oneOf(model.durations)})`
              : `duration must be ${oneOf(model.durations)}`,
          });
        }
        const ratio = b.aspect_ratio;
        if (ratio !== undefined && !model.aspectRatios.includes(ratio as AspectRatio)) {
          const others = typeof ratio === 'string' ? takenBy(models, model.id, (m) => m.aspectRatios.includes(ratio as AspectRatio)) : [];
          ctx.addIssue({
            code: 'custom',
            path: ['aspect_ratio'],
            message: others.length
              ? `aspect_ratio ${ratio} is only available with ${others.join(', ')} (${model.id} takes ${quoted(model.aspectRatios)})`
              : `aspect_ratio must be ${quoted(model.aspectRatios)}`,
          });
        }
        if (b.image_urls.length > model.maxImages)
          ctx.addIssue({
            code: 'custom',
            path: ['image_urls'],
            message:
              model.maxImages === 0
                ? `${model.id} takes no reference image: image_urls must be empty`
                : `image_urls holds at most ${model.maxImages} URL${model.maxImages === 1 ? '' : 's'}`,
          });
        if (!model.characters && (b.character_url !== undefined || b.characters?.length))
          ctx.addIssue({
            code: 'custom',
            path: [b.character_url !== undefined ? 'character_url' : 'characters'],
            message: `${model.id} takes no characters`,
          });
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
}

function buildSubmitSchema(models: Catalog['models']) {
  const fields = submitFields(models);
  return z.pipe(
    fields,
    z.transform(({ character_url, character_timestamps, characters, aspect_ratio, duration, ...rest }: z.output<typeof fields>) => {
      const model = modelOf(models, rest.model)!;
      return {
        ...rest,
        aspect_ratio: (aspect_ratio as AspectRatio | undefined) ?? model.defaultAspectRatio,
        duration: (asDuration(duration) as number | undefined) ?? model.defaultDuration,
        characters:
          character_url !== undefined && character_timestamps !== undefined
            ? [{ url: character_url, timestamps: character_timestamps }]
            : (characters ?? []),
        usedDeprecatedFields: character_url !== undefined,
      };
    }),
  );
}

const schemas = new WeakMap<Catalog['models'], ReturnType<typeof buildSubmitSchema>>();

/**
 * The client's submit body, as sent (seed dialect), checked against the catalog: each
 * model's entry says which durations, ratios, images and characters it takes, and fills in
 * its defaults. Unknown fields are ignored. Built once per catalog.
 */
export function submitBodySchema(models: Catalog['models']) {
  let schema = schemas.get(models);
  if (!schema) schemas.set(models, (schema = buildSubmitSchema(models)));
  return schema;
}
export type SubmitRequest = z.output<ReturnType<typeof buildSubmitSchema>>;

/**
 * A remix, in both dialects (`POST /v1/videos/generations/{id}/remix`, `POST /v1/videos/{id}/remix`):
 * the new prompt (what the official SDK sends), and our `callback_url`. The rest is the original's.
 */
export const remixBodySchema = lazySchema(() =>
  z.object({
    prompt: promptField(),
    callback_url: z.optional(httpUrl('callback_url')),
  }),
);
export type RemixRequest = z.infer<ReturnType<typeof remixBodySchema>>;

/** The answer to a submit. */
export const submitResponseSchema = lazySchema(() =>
  z.object({ id: z.string() }),
);
