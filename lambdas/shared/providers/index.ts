import type { ProviderKind, UpstreamConfig } from '../catalog';
import { ConfigError, type Config } from '../config';
import { secretValue } from '../aws/secrets';
import type { UpstreamRegistry } from '../router';
import type { CreateProvider, UpstreamProvider } from './provider';

export type { UpstreamRegistry };

/**
 * A kind's code (and its SDK) is loaded only when an upstream of that kind is first used.
 * The bundler packs every `providers/<kind>.ts` behind this one import and evaluates a file
 * only when it is imported; adding a kind is adding its file.
 */
async function loadKind(kind: ProviderKind): Promise<CreateProvider> {
  let module: { createProvider?: CreateProvider };
  try {
    module = (await import(`./${kind}.ts`)) as typeof module;
  } catch (error) {
    // Only the kind's own file missing is a configuration problem; a broken file is a bug.
    const missing = new RegExp(`(Cannot find module|Failed to load url|Module not found in bundle:) '?[^ ']*\\b${kind}\\.ts`);
    if (missing.test((error as Error).message ?? ''))
      throw new ConfigError(`upstream kind ${kind} is not available in this build (no lambdas/shared/providers/${kind}.ts)`);
    throw error;
  }
  if (typeof module.createProvider !== 'function') throw new ConfigError(`providers/${kind}.ts exports no createProvider`);
  return module.createProvider;
}

/**
 * The operator's upstreams by name, each adapter built on first use; `get` throws a
 * ConfigError for a name the configuration does not hold or a kind this build lacks.
 */
export function upstreamRegistry(config: Config): UpstreamRegistry {
  const built = new Map<string, Promise<UpstreamProvider>>();
  const build = async (upstream: UpstreamConfig): Promise<UpstreamProvider> => {
    const create = await loadKind(upstream.kind);
    const secretArn = config.UPSTREAM_SECRET_ARNS[upstream.name];
    const provider = await create({
      upstream,
      apiKey: async () => {
        if (!secretArn && upstream.apiKey === undefined)
          throw new ConfigError(`upstream ${upstream.name} has no key: give it apiKey (local) or a secret in UPSTREAM_SECRET_ARNS (AWS)`);
        return secretValue(secretArn, upstream.apiKey);
      },
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
