import * as z from 'zod/mini';
import { lazySchema } from './contracts/lazy';

/**
 * The operator's upstreams and model catalog: JSON read from `UPSTREAMS` and `MODELS`
 * (environment locally, CDK context in the cloud). Each catalog model drives the
 * validation of requests for it and names its routes, in order of preference.
 * Clients see models and their allowed values, never upstream names.
 */

export const providerKinds = ['simulated', 'duomi', 'openai', 'bedrock', 'fal', 'replicate', 'openrouter'] as const;
export type ProviderKind = (typeof providerKinds)[number];

/*
 * The schemas are built when a catalog is first read: a Lambda reads it with its first request
 * that needs it (cdk synth and npm start have checked it before), and most never do.
 */
const upstreamName = lazySchema(() =>
  z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an upstream name is lower-case letters, digits and dashes (at most 63)')),
);

export const upstreamSchema = lazySchema(() => z.object({
  name: upstreamName(),
  kind: z.enum(providerKinds),
  /** The dialect's API root (for `openai`, the `/v1` level). For `bedrock`, only to aim it at a local endpoint. */
  baseUrl: z.optional(
    z.pipe(
      z.url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL' }),
      z.transform((u) => u.replace(/\/+$/, '')),
    ),
  ),
  /** Bedrock's region. */
  region: z.optional(z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as us-west-2'))),
  /** Local use only; in AWS each keyed upstream's key is in its own Secrets Manager secret. */
  apiKey: z.optional(z.string().check(z.minLength(1))),
  /** Whole-exchange timeout for this upstream's calls; default UPSTREAM_TIMEOUT_MS. */
  timeoutMs: z.optional(z.number().check(z.int(), z.gte(100), z.lte(60_000))),
  /** Replicate's webhook signing secret (`whsec_…`). */
  webhookSecret: z.optional(z.string().check(z.minLength(1))),
  /**
   * `false`: the gateway polls this upstream's tasks on a cadence, as for the kinds that never
   * call back (an upstream whose callbacks cannot reach the gateway). Default: its kind's way.
   */
  callsBack: z.optional(z.boolean()),
}));
export type UpstreamConfig = z.infer<ReturnType<typeof upstreamSchema>>;

export const aspectRatios = ['16:9', '9:16', '1:1', '4:3', '3:4', '21:9'] as const;
export type AspectRatio = (typeof aspectRatios)[number];
/** The ratios of a model whose entry lists none: the seed's. */
const defaultAspectRatios: AspectRatio[] = ['16:9', '9:16'];

export const routeSchema = lazySchema(() => z.object({
  upstream: upstreamName(),
  /** The upstream's own model id. */
  model: z.string().check(z.minLength(1), z.maxLength(200)),
  /** USD per delivered second, for usage records. */
  pricePerSecond: z.optional(z.number().check(z.gte(0))),
  /** `WxH` per aspect ratio, for dialects that take a size (`openai`); defaults per ratio otherwise. */
  sizes: z.optional(z.partialRecord(z.enum(aspectRatios), z.string().check(z.regex(/^\d{2,5}x\d{2,5}$/, 'a size is WxH')))),
  /** Resolution word for dialects that take one (`bedrock`: "720p"). */
  resolution: z.optional(z.string().check(z.minLength(1))),
}));
export type RouteConfig = z.infer<ReturnType<typeof routeSchema>>;

/** The most reference images any model may take (the submit contract's own bound). */
export const MAX_IMAGES = 10;

/**
 * One model of `MODELS`. Fields left out take the seed's rules for the seed's three model
 * ids (so `{"sora-2": {"routes": [...]}}` routes it elsewhere and keeps its rules); any other
 * model must list its durations.
 */
export const modelEntrySchema = lazySchema(() => z.object({
  durations: z.optional(z.array(z.number().check(z.int(), z.gte(1), z.lte(600))).check(z.minLength(1))),
  defaultDuration: z.optional(z.number()),
  aspectRatios: z.optional(z.array(z.enum(aspectRatios)).check(z.minLength(1))),
  defaultAspectRatio: z.optional(z.enum(aspectRatios)),
  maxImages: z.optional(z.number().check(z.int(), z.gte(0), z.lte(MAX_IMAGES))),
  characters: z.optional(z.boolean()),
  routes: z.array(routeSchema()).check(z.minLength(1, { message: 'a model needs at least one route' })),
}));
export type ModelEntry = z.infer<ReturnType<typeof modelEntrySchema>>;

/** A model as validation and routing use it: every default filled in. */
export interface CatalogModel {
  id: string;
  durations: number[];
  defaultDuration: number;
  aspectRatios: AspectRatio[];
  defaultAspectRatio: AspectRatio;
  maxImages: number;
  characters: boolean;
  routes: RouteConfig[];
}

export interface Catalog {
  upstreams: UpstreamConfig[];
  models: Record<string, CatalogModel>;
}

export class CatalogError extends Error {}

const modelId = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

function parseJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new CatalogError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

const describe = (what: string, issues: readonly z.core.$ZodIssue[]) =>
  issues.map((i) => `${what}${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`).join('; ');

/** The upstream list; throws a message naming the bad entry. Accepts JSON text or a parsed value (cdk.json). */
export function parseUpstreams(input: string | unknown): UpstreamConfig[] {
  const value = typeof input === 'string' ? parseJson('UPSTREAMS', input) : input;
  const parsed = z.array(upstreamSchema()).safeParse(value);
  if (!parsed.success) throw new CatalogError(`invalid UPSTREAMS: ${describe('UPSTREAMS', parsed.error.issues)}`);
  const seen = new Set<string>();
  for (const [i, u] of parsed.data.entries()) {
    const at = `UPSTREAMS[${i}] (${u.name})`;
    if (seen.has(u.name)) throw new CatalogError(`invalid UPSTREAMS: ${at}: the name ${u.name} is used twice`);
    seen.add(u.name);
    if (u.kind === 'bedrock' && !u.region) throw new CatalogError(`invalid UPSTREAMS: ${at}: a bedrock upstream needs region`);
    if (u.kind !== 'bedrock' && !u.baseUrl) throw new CatalogError(`invalid UPSTREAMS: ${at}: a ${u.kind} upstream needs baseUrl`);
  }
  return parsed.data;
}

/** The model catalog, checked against the upstreams it routes to. */
export function parseModels(input: string | unknown, upstreams: readonly UpstreamConfig[]): Record<string, CatalogModel> {
  const value = typeof input === 'string' ? parseJson('MODELS', input) : input;
  const parsed = z.record(z.string(), modelEntrySchema()).safeParse(value);
  if (!parsed.success) throw new CatalogError(`invalid MODELS: ${describe('MODELS', parsed.error.issues)}`);
  const names = new Set(upstreams.map((u) => u.name));
  const models: [string, CatalogModel][] = [];
  for (const [id, entry] of Object.entries(parsed.data)) {
    const at = `MODELS.${id}`;
    if (!modelId.test(id)) throw new CatalogError(`invalid MODELS: ${at}: a model id is letters, digits and . _ : - (at most 100)`);
    const seed = modelOf(seedRules, id);
    if (!entry.durations && !seed)
      throw new CatalogError(`invalid MODELS: ${at}.durations: required (only ${Object.keys(seedRules).join(', ')} have default rules)`);
    const durations = [...new Set(entry.durations ?? seed!.durations)].sort((a, b) => a - b);
    const defaultDuration = entry.defaultDuration ?? (entry.durations ? durations[0]! : seed!.defaultDuration);
    if (!durations.includes(defaultDuration))
      throw new CatalogError(`invalid MODELS: ${at}.defaultDuration: ${defaultDuration} is not one of its durations (${durations.join(', ')})`);
    const ratios: AspectRatio[] = [...new Set(entry.aspectRatios ?? seed?.aspectRatios ?? defaultAspectRatios)];
    const defaultAspectRatio = entry.defaultAspectRatio ?? ratios[0]!;
    if (!ratios.includes(defaultAspectRatio))
      throw new CatalogError(`invalid MODELS: ${at}.defaultAspectRatio: ${defaultAspectRatio} is not one of its aspectRatios (${ratios.join(', ')})`);
    for (const [i, r] of entry.routes.entries())
      if (!names.has(r.upstream))
        throw new CatalogError(`invalid MODELS: ${at}.routes[${i}].upstream: no upstream is named ${r.upstream} (UPSTREAMS has ${[...names].join(', ') || 'none'})`);
    models.push([id, {
      id,
      durations,
      defaultDuration,
      aspectRatios: ratios,
      defaultAspectRatio,
      maxImages: entry.maxImages ?? seed?.maxImages ?? 1,
      characters: entry.characters ?? seed?.characters ?? false,
      routes: entry.routes,
    }]);
  }
  if (models.length === 0) throw new CatalogError('invalid MODELS: the catalog holds no model');
  // Own entries, whatever the ids (`__proto__` included), where assignment would set a prototype.
  return Object.fromEntries(models);
}

type ModelRules = Omit<CatalogModel, 'id' | 'routes'>;
const soraRules = (durations: number[]): ModelRules => ({
  durations,
  defaultDuration: 10,
  aspectRatios: ['16:9', '9:16'],
  defaultAspectRatio: '16:9',
  maxImages: 1,
  characters: true,
});

/** A catalog model by id: an own entry only, so that ids like `__proto__` or `constructor` are unknown. */
export const modelOf = <T>(models: Readonly<Record<string, T>>, id: string): T | undefined => (Object.hasOwn(models, id) ? models[id] : undefined);

/** The seed's three Sora models and their rules: 10 or 15 seconds, 25 only with sora-2-pro. */
export const seedRules: Readonly<Record<string, ModelRules>> = {
  'sora-2': soraRules([10, 15]),
  'sora-2-pro': soraRules([10, 15, 25]),
  'sora-2-temporary': soraRules([10, 15]),
};
export const seedModelIds = Object.keys(seedRules);

/**
 * The seed's three Sora models with the seed's rules, routed to one upstream: the catalog
 * when `MODELS` is unset. `modelMap` and `disabled` are the older single-upstream settings.
 */
export function seedCatalogModels(upstream: string, modelMap: Partial<Record<string, string>> = {}, disabled: readonly string[] = []): Record<string, CatalogModel> {
  const models: Record<string, CatalogModel> = {};
  for (const [id, rules] of Object.entries(seedRules))
    if (!disabled.includes(id)) models[id] = { id, ...rules, routes: [{ upstream, model: modelMap[id] ?? id }] };
  return models;
}

/** What `GET /v1/models` shows a client: allowed values only, no upstream. */
export function publicModel(m: CatalogModel) {
  return {
    id: m.id,
    object: 'model' as const,
    durations: m.durations,
    default_duration: m.defaultDuration,
    aspect_ratios: m.aspectRatios,
    default_aspect_ratio: m.defaultAspectRatio,
    max_images: m.maxImages,
    characters: m.characters,
  };
}
