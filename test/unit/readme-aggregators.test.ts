import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModels, parseUpstreams, publicModel } from '../../lambdas/shared/catalog';
import { parseStageConfig } from '../../lib/stage-config';

/** The README's aggregator example is a catalog the gateway and the stack both take as written. */
const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('#### Worked example: one model through fal, Replicate and OpenRouter'));
const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as { upstreams: unknown[]; models: Record<string, unknown> };

describe('the README’s fal, Replicate and OpenRouter example', () => {
  it('parses as upstreams and models, and clients see no upstream in it', () => {
    const upstreams = parseUpstreams(example.upstreams);
    expect(upstreams.map((u) => u.kind)).toEqual(['fal', 'replicate', 'openrouter']);
    const models = parseModels(example.models, upstreams);
    expect(models['kling-2.1']!.routes.map((r) => r.upstream)).toEqual(['fal', 'replicate']);
    const shown = JSON.stringify(Object.values(models).map(publicModel));
    for (const u of upstreams) expect(shown).not.toContain(u.baseUrl!);
    expect(shown).not.toMatch(/"(fal|replicate|openrouter)"/);
  });

  it('is a stage configuration the stack accepts', () => {
    expect(() => parseStageConfig({ upstreams: JSON.stringify(example.upstreams), models: JSON.stringify(example.models) })).not.toThrow();
  });
});
