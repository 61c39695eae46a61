import { providerKinds, type UpstreamConfig } from './catalog';

/**
 * Clients never learn which upstream serves them: an upstream's own words (a refusal, a
 * failure reason) reach a client only with the upstream's name, its host and the route's
 * model id taken out.
 */
export interface UpstreamIdentity {
  /** The operator's name of the upstream. */
  name?: string;
  /** Its API root; its host (and host:port) are taken out. */
  baseUrl?: string;
  /** The route's model id at that upstream. */
  model?: string;
}

/** Who a task's upstream is, from the operator's entry: what `clientMessage` takes out. */
export function upstreamIdentity(upstreams: readonly UpstreamConfig[], name: string | undefined, model: string | undefined): UpstreamIdentity {
  return { name, model, baseUrl: upstreams.find((u) => u.name === name)?.baseUrl };
}

/** Dialect words are not the operator's secret and are common words ("simulated render failure"): an upstream named after its kind keeps them. */
const dialectWords: readonly string[] = providerKinds;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function clientMessage(message: string, who: UpstreamIdentity): string {
  const words: [string, string][] = [];
  if (who.baseUrl) {
    try {
      const url = new URL(who.baseUrl);
      words.push([url.origin, 'the upstream'], [url.host, 'the upstream'], [url.hostname, 'the upstream']);
    } catch {
      // not a URL: nothing of it to take out
    }
  }
  if (who.model) words.push([who.model, 'the model']);
  if (who.name && !dialectWords.includes(who.name)) words.push([who.name, 'the upstream']);
  let text = message;
  // Longest first, so a host is taken out before the name it may contain.
  for (const [word, instead] of words.filter(([w]) => w.length >= 3).sort((a, b) => b[0].length - a[0].length))
    text = text.replace(new RegExp(`(?<![A-Za-z0-9_-])${escape(word)}(?![A-Za-z0-9_-])`, 'gi'), instead);
  return text;
}
