import { DuomiProvider } from './duomi';
import type { CreateProvider } from './provider';

/**
 * The simulated upstream (see `local/simulated-upstream.ts`) speaks the duomi dialect on
 * loopback, so the provider is the duomi client pointed at it.
 */
export class SimulatedProvider extends DuomiProvider {
  override readonly kind = 'simulated' as const;
}

export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs }) =>
  new SimulatedProvider({ name: upstream.name, baseUrl: upstream.baseUrl!, apiKey, timeoutMs });
