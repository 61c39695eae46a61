import type { UpstreamConfig } from '../catalog';
import { ConfigError, type Config } from '../config';
import { secretValue } from '../aws/secrets';
import { videoAuth } from './video-auth';

/** An upstream's key: its Secrets Manager secret in AWS, the entry's `apiKey` locally. */
export function upstreamKey(upstream: UpstreamConfig, config: Pick<Config, 'UPSTREAM_SECRET_ARNS'>): Promise<string> {
  const secretArn = config.UPSTREAM_SECRET_ARNS[upstream.name];
  if (!secretArn && upstream.apiKey === undefined)
    return Promise.reject(new ConfigError(`upstream ${upstream.name} has no key: give it apiKey (local) or a secret in UPSTREAM_SECRET_ARNS (AWS)`));
  return secretValue(secretArn, upstream.apiKey);
}

/**
 * The headers for fetching `url`, one of the upstream's video URLs: its key, for a content
 * endpoint that wants it (video-auth.ts), and only when the URL is on the origin of the
 * upstream's configured `baseUrl`. A URL on any other host (a CDN's, or one an upstream names
 * to have our key sent there) is fetched bare; the fetch never carries them across a redirect.
 */
export async function videoHeaders(
  upstream: UpstreamConfig,
  url: string,
  config: Pick<Config, 'UPSTREAM_SECRET_ARNS'>,
): Promise<Record<string, string> | undefined> {
  const auth = videoAuth[upstream.kind];
  if (!auth || !upstream.baseUrl || !sameOrigin(url, upstream.baseUrl)) return undefined;
  return auth(await upstreamKey(upstream, config));
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
