import type { ProviderKind, UpstreamConfig } from '../catalog';
import { ConfigError, type Config } from '../config';
import type { UpstreamRegistry } from '../router';
import type { CreateProvider, UpstreamProvider } from './provider';
import { upstreamKey } from './upstream-keys';

export type { UpstreamRegistry };

/**
 * Each kind's file (and its SDK), imported when an upstream of that kind is first used.
 * The stack's bundler replaces each `process.env.VTG_BUNDLE_<KIND>` with "1" or "0"
 * (lib/bundled-kinds.ts): a kind the stage does not configure is folded to `undefined` and
 * its file never enters a Lambda's bundle. Unbundled (npm start, tests) every kind is here.
 */
const kindLoaders: Record<ProviderKind, (() => Promise<{ createProvider: CreateProvider }>) | undefined> = {
  simulated: process.env.VTG_BUNDLE_SIMULATED !== '0' ? () => import('./simulated') : undefined,
  duomi: process.env.VTG_BUNDLE_DUOMI !== '0' ? () => import('./duomi') : undefined,
  openai: process.env.VTG_BUNDLE_OPENAI !== '0' ? () => import('./openai') : undefined,
  bedrock: process.env.VTG_BUNDLE_BEDROCK !== '0' ? () => import('./bedrock') : undefined,
  fal: process.env.VTG_BUNDLE_FAL !== '0' ? () => import('./fal') : undefined,
  replicate: process.env.VTG_BUNDLE_REPLICATE !== '0' ? () => import('./replicate') : undefined,
  openrouter: process.env.VTG_BUNDLE_OPENROUTER !== '0' ? () => import('./openrouter') : undefined,
};

/** A kind this Lambda's bundle leaves out: the stack gives each Lambda only the kinds its work reaches. */
export class KindNotBundledError extends ConfigError {}

async function loadKind(kind: ProviderKind): Promise<CreateProvider> {
  const load = kindLoaders[kind];
  if (!load) throw new KindNotBundledError(`upstream kind ${kind} is not in this build: the stack bundles only the kinds its upstreams name`);
  return (await load()).createProvider;
}

/**
 * The operator's upstreams by name, each adapter built on first use; `get` throws a
 * ConfigError for a name the configuration does not hold or a kind this build lacks.
 */
export function upstreamRegistry(config: Config): UpstreamRegistry {
  const built = new Map<string, Promise<UpstreamProvider>>();
  const build = async (upstream: UpstreamConfig): Promise<UpstreamProvider> => {
    const create = await loadKind(upstream.kind);
    const provider = await create({
      upstream,
      apiKey: () => upstreamKey(upstream, config),
      timeoutMs: upstream.timeoutMs ?? config.UPSTREAM_TIMEOUT_MS,
      config,
    });
    return upstream.callsBack === false && provider.callsBack ? polled(provider) : provider;
  };
  return {
    get(name) {
      let provider = built.get(name);
      if (!provider) {
        const upstream = config.catalog.upstreams.find((u) => u.name === name);
        if (!upstream) return Promise.reject(new ConfigError(`no upstream is named ${name}`));
        provider = build(upstream);
        // A failed build (a secret not yet readable) is tried again on the next use.
        provider.catch(() => built.delete(name));
        built.set(name, provider);
      }
      return provider;
    },
  };
}

/** An upstream whose entry says `callsBack: false`: the same adapter, its tasks polled by the poll worker. */
function polled(provider: UpstreamProvider): UpstreamProvider {
  return new Proxy(provider, {
    get(target, property) {
      if (property === 'callsBack') return false;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
