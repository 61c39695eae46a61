import type { ProviderKind } from '../catalog';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * How each kind's own video URLs are fetched (a content endpoint that wants our key); kinds
 * absent here serve their videos from URLs that need none. A table apart from the adapters,
 * which use it too, so the archive fetches a video without loading any adapter. It imports
 * nothing: an adapter's file (loaded on first use) pulls no other module in with it.
 */
export const videoAuth: Partial<Record<ProviderKind, (apiKey: string) => Record<string, string>>> = {
  openai: bearer,
  openrouter: bearer,
};
