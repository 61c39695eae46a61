import type { Config } from '../config';
import { secretValue } from '../aws/secrets';
import { DuomiProvider } from './duomi';
import type { UpstreamProvider } from './provider';
import { SimulatedProvider } from './simulated';

/** The upstream chosen by configuration. */
export function providerFor(config: Config): UpstreamProvider {
  const options = {
    name: config.UPSTREAM_PROVIDER,
    baseUrl: config.UPSTREAM_BASE_URL,
    apiKey: () => secretValue(config.UPSTREAM_KEY_SECRET_ARN, config.UPSTREAM_KEY),
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
  };
  return config.UPSTREAM_PROVIDER === 'simulated' ? new SimulatedProvider(options) : new DuomiProvider(options);
}
