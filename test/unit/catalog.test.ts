import { describe, expect, it } from 'vitest';
import { parseModels, parseUpstreams, publicModel, seedCatalogModels } from '../../lambdas/shared/catalog';
import { ConfigError, parseConfig } from '../../lambdas/shared/config';
import { describeIssue, submitBodySchema } from '../../lambdas/shared/contracts';
import { upstreamRegistry } from '../../lambdas/shared/providers';

const upstreams = [
  { name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1/', apiKey: 'sk-a' },
  { name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com' },
  { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
];
const seedance = {
  durations: [10, 5],
  aspectRatios: ['16:9', '9:16', '1:1'],
  maxImages: 0,
  characters: false,
  routes: [{ upstream: 'reseller-a', model: 'doubao-seedance-2-0-pro', pricePerSecond: 0.08 }, { upstream: 'aws', model: 'luma.ray-v2:0' }],
};
const models = { 'sora-2': { routes: [{ upstream: 'duomi', model: 'sora-2' }] }, 'seedance-2.0': seedance };

const env = {
  TABLE_NAME: 't',
  BUCKET_NAME: 'b',
  ARCHIVE_QUEUE_URL: 'http://127.0.0.1:9324/q/archive',
  NOTIFY_QUEUE_URL: 'http://127.0.0.1:9324/q/notify',
  POLL_QUEUE_URL: 'http://127.0.0.1:9324/q/poll',
  PUBLIC_BASE_URL: 'http://127.0.0.1:3000',
  CALLBACK_SECRET: 'cb',
};

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('the upstream list', () => {
  it('reads each entry, dropping trailing slashes from baseUrl', () => {
    expect(parseUpstreams(JSON.stringify(upstreams))[0]).toEqual({ ...upstreams[0], baseUrl: 'https://api.reseller-a.example/v1' });
  });

  it.each([
    ['not JSON', '[{', 'UPSTREAMS is not valid JSON'],
    ['an unknown kind', [{ name: 'x', kind: 'sora', baseUrl: 'https://x.example' }], 'UPSTREAMS[0].kind'],
    ['a bad name', [{ name: 'Reseller A', kind: 'duomi', baseUrl: 'https://x.example' }], 'UPSTREAMS[0].name: an upstream name is lower-case'],
    ['a name used twice', [upstreams[1], upstreams[1]], 'UPSTREAMS[1] (duomi): the name duomi is used twice'],
    ['bedrock without region', [{ name: 'aws', kind: 'bedrock' }], 'UPSTREAMS[0] (aws): a bedrock upstream needs region'],
    ['openai without baseUrl', [{ name: 'r', kind: 'openai' }], 'UPSTREAMS[0] (r): a openai upstream needs baseUrl'],
    ['a baseUrl that is not http(s)', [{ name: 'r', kind: 'openai', baseUrl: 'ftp://r.example' }], 'UPSTREAMS[0].baseUrl'],
  ])('refuses %s, naming the entry', (_what, input, message) => {
    expect(refusal(() => parseUpstreams(typeof input === 'string' ? input : JSON.stringify(input)))).toContain(message);
  });
});

describe('the model catalog', () => {
  const list = parseUpstreams(upstreams);

  it('fills each model in from its entry, and a seed model left bare from the seed rules', () => {
    const catalog = parseModels(JSON.stringify(models), list);
    expect(catalog['seedance-2.0']).toMatchObject({ durations: [5, 10], defaultDuration: 5, defaultAspectRatio: '16:9', maxImages: 0, characters: false });
    expect(catalog['sora-2']).toMatchObject({ durations: [10, 15], defaultDuration: 10, aspectRatios: ['16:9', '9:16'], maxImages: 1, characters: true });
  });

  it.each([
    ['a route to an upstream nobody named', { m: { durations: [5], routes: [{ upstream: 'nowhere', model: 'x' }] } }, 'MODELS.m.routes[0].upstream: no upstream is named nowhere'],
    ['a model without durations', { m: { routes: [{ upstream: 'duomi', model: 'x' }] } }, 'MODELS.m.durations: required'],
    ['a default duration it does not take', { m: { durations: [5], defaultDuration: 10, routes: [{ upstream: 'duomi', model: 'x' }] } }, 'MODELS.m.defaultDuration: 10 is not one of its durations (5)'],
    ['a model without routes', { m: { durations: [5], routes: [] } }, 'MODELS.m.routes: a model needs at least one route'],
    ['an unknown ratio', { m: { durations: [5], aspectRatios: ['2:1'], routes: [{ upstream: 'duomi', model: 'x' }] } }, 'MODELS.m.aspectRatios[0]'],
    ['an empty catalog', {}, 'the catalog holds no model'],
  ])('refuses %s, naming the entry', (_what, input, message) => {
    expect(refusal(() => parseModels(input, list))).toContain(message);
  });

  it('shows clients allowed values only, never an upstream or its model id', () => {
    const shown = JSON.stringify(Object.values(parseModels(models, list)).map(publicModel));
    expect(JSON.parse(shown)[1]).toEqual({
      id: 'seedance-2.0',
      object: 'model',
      durations: [5, 10],
      default_duration: 5,
      aspect_ratios: ['16:9', '9:16', '1:1'],
      default_aspect_ratio: '16:9',
      max_images: 0,
      characters: false,
    });
    for (const secret of ['reseller-a', 'duomi', 'aws', 'doubao', 'luma', 'pricePerSecond']) expect(shown).not.toContain(secret);
  });
});

describe('the configuration carries the catalog', () => {
  it('unset, is the seed models on the one upstream of the older settings', () => {
    const c = parseConfig({ ...env, UPSTREAM_BASE_URL: 'https://duomiapi.com', UPSTREAM_KEY_SECRET_ARN: 'arn:key', MODEL_MAP: '{"sora-2":"sora-2-hd"}', DISABLED_MODELS: 'sora-2-temporary' });
    expect(c.catalog.upstreams).toEqual([{ name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com', apiKey: undefined }]);
    expect(Object.keys(c.catalog.models)).toEqual(['sora-2', 'sora-2-pro']);
    expect(c.catalog.models['sora-2']!.routes).toEqual([{ upstream: 'duomi', model: 'sora-2-hd' }]);
    expect(c.UPSTREAM_SECRET_ARNS).toEqual({ duomi: 'arn:key' });
  });

  it('set, is UPSTREAMS and MODELS, and needs no single-upstream setting', () => {
    const c = parseConfig({ ...env, UPSTREAMS: JSON.stringify(upstreams), MODELS: JSON.stringify(models), UPSTREAM_SECRET_ARNS: '{"duomi":"arn:duomi"}' });
    expect(c.catalog.upstreams.map((u) => u.name)).toEqual(['reseller-a', 'duomi', 'aws']);
    expect(Object.keys(c.catalog.models)).toEqual(['sora-2', 'seedance-2.0']);
  });

  it('UPSTREAMS alone routes the seed models to its first upstream', () => {
    const c = parseConfig({ ...env, UPSTREAMS: JSON.stringify(upstreams.slice(1)) });
    expect(c.catalog.models['sora-2-pro']!.routes).toEqual([{ upstream: 'duomi', model: 'sora-2-pro' }]);
  });

  it.each([
    [{ UPSTREAMS: '[{"name":"x"}]' }, 'UPSTREAMS[0].kind'],
    [{ UPSTREAMS: JSON.stringify(upstreams), MODELS: '{"m":{"durations":[5],"routes":[{"upstream":"nope","model":"x"}]}}' }, 'MODELS.m.routes[0].upstream'],
    [{ UPSTREAMS: JSON.stringify(upstreams), MODELS: JSON.stringify(models), MODEL_MAP: '{"sora-2":"x"}' }, 'MODEL_MAP and DISABLED_MODELS shape the seed catalog'],
    [{ UPSTREAMS: JSON.stringify(upstreams), UPSTREAM_SECRET_ARNS: '{"ghost":"arn"}' }, 'UPSTREAM_SECRET_ARNS: no upstream is named ghost'],
    [{}, 'UPSTREAM_BASE_URL: set UPSTREAMS, or UPSTREAM_BASE_URL'],
  ])('stops start-up on a bad catalog, naming the entry (%j)', (extra, message) => {
    const error = (() => {
      try {
        parseConfig({ ...env, UPSTREAM_KEY: 'k', ...extra });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toContain(message);
  });
});

describe('submit against an operator catalog', () => {
  const catalog = parseModels(models, parseUpstreams(upstreams));
  const schema = submitBodySchema(catalog);
  const refused = (body: object) => {
    const r = schema.safeParse(body);
    if (r.success) throw new Error(`accepted ${JSON.stringify(r.data)}`);
    return describeIssue(r.error);
  };
  const base = { model: 'seedance-2.0', prompt: 'a fox' };

  it("takes what the model allows, with the model's defaults", () => {
    expect(schema.parse(base)).toMatchObject({ model: 'seedance-2.0', duration: 5, aspect_ratio: '16:9', image_urls: [], characters: [] });
    expect(schema.parse({ ...base, duration: 10, aspect_ratio: '1:1' })).toMatchObject({ duration: 10, aspect_ratio: '1:1' });
  });

  it('refuses a model outside the catalog, naming the ones it holds', () => {
    expect(refused({ ...base, model: 'kling' })).toEqual({ message: 'model must be one of sora-2, seedance-2.0', param: 'model' });
    expect(refused({ ...base, model: 'sora-2-pro' })).toEqual({ message: 'model sora-2-pro is not available on this gateway', param: 'model' });
  });

  it('refuses what the model does not take, listing what it does', () => {
    expect(refused({ ...base, duration: 15 })).toEqual({ message: 'duration 15 is only available with sora-2 (seedance-2.0 takes 5 or 10)', param: 'duration' });
    expect(refused({ ...base, duration: 7 })).toEqual({ message: 'duration must be 5 or 10', param: 'duration' });
    expect(refused({ ...base, aspect_ratio: '4:3' })).toEqual({ message: 'aspect_ratio must be "16:9", "9:16" or "1:1"', param: 'aspect_ratio' });
    expect(refused({ ...base, image_urls: ['https://a.example/1.jpg'] })).toEqual({ message: 'seedance-2.0 takes no reference image: image_urls must be empty', param: 'image_urls' });
    expect(refused({ ...base, characters: [{ url: 'https://a.example/c.mp4', timestamps: '0,3' }] })).toEqual({ message: 'seedance-2.0 takes no characters', param: 'characters' });
  });

  it('refuses for another model what that model does not take, and takes what it does', () => {
    expect(refused({ ...base, model: 'sora-2', aspect_ratio: '1:1' })).toEqual({
      message: 'aspect_ratio 1:1 is only available with seedance-2.0 (sora-2 takes "16:9" or "9:16")',
      param: 'aspect_ratio',
    });
    expect(schema.parse({ ...base, model: 'sora-2', duration: 15, characters: [{ url: 'https://a.example/c.mp4', timestamps: '0,3' }] })).toMatchObject({ duration: 15 });
  });
});

describe('the upstream registry', () => {
  const config = parseConfig({
    ...env,
    UPSTREAMS: JSON.stringify([
      { name: 'sim', kind: 'simulated', baseUrl: 'http://127.0.0.1:9', apiKey: 'sk-sim', timeoutMs: 1234 },
      { name: 'keyless', kind: 'duomi', baseUrl: 'https://duomi.example' },
      { name: 'far', kind: 'openrouter', baseUrl: 'https://openrouter.example/api/v1' },
    ]),
  });

  it('builds an upstream of a kind on first use, once', async () => {
    const openai = await upstreamRegistry({ ...config, catalog: { ...config.catalog, upstreams: [{ name: 'r', kind: 'openai', baseUrl: 'https://r.example/v1' }] } }).get('r');
    expect(openai).toMatchObject({ name: 'r', kind: 'openai', callsBack: false });
    const upstreams = upstreamRegistry(config);
    const sim = await upstreams.get('sim');
    expect(sim).toMatchObject({ name: 'sim', kind: 'simulated', callsBack: true });
    expect(await upstreams.get('sim')).toBe(sim);
  });

  it('builds every kind, each calling back or polled as its dialect is, unless its entry says callsBack: false', async () => {
    const every = parseConfig({
      ...env,
      UPSTREAMS: JSON.stringify([
        { name: 'sim', kind: 'simulated', baseUrl: 'http://127.0.0.1:9', apiKey: 'k' },
        { name: 'duomi', kind: 'duomi', baseUrl: 'https://duomi.example', apiKey: 'k' },
        { name: 'reseller', kind: 'openai', baseUrl: 'https://r.example/v1', apiKey: 'k' },
        { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
        { name: 'fal', kind: 'fal', baseUrl: 'https://queue.fal.run', apiKey: 'k' },
        { name: 'replicate', kind: 'replicate', baseUrl: 'https://api.replicate.com/v1', apiKey: 'k' },
        { name: 'openrouter', kind: 'openrouter', baseUrl: 'https://openrouter.ai/api/v1', apiKey: 'k' },
        { name: 'walled', kind: 'duomi', baseUrl: 'https://walled.example', apiKey: 'k', callsBack: false },
      ]),
    });
    const registry = upstreamRegistry(every);
    const built = await Promise.all(every.catalog.upstreams.map((u) => registry.get(u.name)));
    expect(built.map((p) => [p.name, p.kind, p.callsBack])).toEqual([
      ['sim', 'simulated', true],
      ['duomi', 'duomi', true],
      ['reseller', 'openai', false],
      ['aws', 'bedrock', false],
      ['fal', 'fal', true],
      ['replicate', 'replicate', true],
      ['openrouter', 'openrouter', true],
      ['walled', 'duomi', false],
    ]);
    // The polled one is the same adapter: its calls still reach its upstream, with its key.
    await expect(built[7]!.status('job-1')).rejects.toThrow(/upstream unreachable/);
  });

  it('refuses a name the configuration does not hold', async () => {
    await expect(upstreamRegistry(config).get('nowhere')).rejects.toThrow(new ConfigError('no upstream is named nowhere'));
  });

  it('names the upstream whose key is missing', async () => {
    const keyless = await upstreamRegistry(config).get('keyless');
    await expect(keyless.status('job-1')).rejects.toThrow('upstream keyless has no key');
  });
});

describe('the seed catalog', () => {
  it('is the seed models with their rules', () => {
    const seed = seedCatalogModels('duomi');
    expect(Object.values(seed).map((m) => [m.id, m.durations])).toEqual([
      ['sora-2', [10, 15]],
      ['sora-2-pro', [10, 15, 25]],
      ['sora-2-temporary', [10, 15]],
    ]);
  });
});
