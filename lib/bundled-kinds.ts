import { providerKinds, type ProviderKind } from '../lambdas/shared/catalog';
import type { LambdaName } from '../lambdas/shared/routes';

/** The kinds whose adapters never call back (`callsBack` false): they are never given our callback URL. */
export const neverCallBack: readonly ProviderKind[] = ['openai', 'bedrock'];

/**
 * The provider kinds each Lambda's work may load, of those the stage configures. Submit,
 * reconcile and poll talk to every upstream; a callback only ever comes from a kind that is
 * given our callback URL. The others never load an adapter: the archive takes the headers
 * of an upstream's own content URL from a table of its own (providers/video-auth.ts) and
 * copies Bedrock's output inside S3 without its client.
 */
export function kindsFor(lambda: LambdaName, configured: readonly ProviderKind[]): ProviderKind[] {
  switch (lambda) {
    case 'submit':
    case 'reconcile':
    case 'poll':
      return [...configured];
    case 'callback':
      return configured.filter((k) => !neverCallBack.includes(k));
    default:
      return [];
  }
}

/**
 * esbuild `define`s that keep the other kinds out of a bundle: the registry
 * (lambdas/shared/providers/index.ts) imports a kind's file only behind
 * `process.env.VTG_BUNDLE_<KIND> !== '0'`, which folds to `false` here, so neither that file
 * nor its SDK (the Bedrock runtime client, for one) is bundled.
 */
export function bundledKindDefines(kinds: readonly ProviderKind[]): Record<string, string> {
  return Object.fromEntries(
    providerKinds.map((k) => [`process.env.VTG_BUNDLE_${k.toUpperCase()}`, JSON.stringify(kinds.includes(k) ? '1' : '0')]),
  );
}
