import { providerKinds, type ProviderKind } from '../lambdas/shared/catalog';

/**
 * esbuild `define`s that keep the provider kinds a stage does not configure out of its
 * bundles: the registry (lambdas/shared/providers/index.ts) imports a kind's file only
 * behind `process.env.VTG_BUNDLE_<KIND> !== '0'`, which folds to `false` here, so neither
 * that file nor its SDK (the Bedrock runtime client, for one) is bundled.
 */
export function bundledKindDefines(kinds: readonly ProviderKind[]): Record<string, string> {
  return Object.fromEntries(
    providerKinds.map((k) => [`process.env.VTG_BUNDLE_${k.toUpperCase()}`, JSON.stringify(kinds.includes(k) ? '1' : '0')]),
  );
}
