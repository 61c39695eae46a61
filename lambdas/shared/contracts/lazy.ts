/**
 * A schema built on its first use and kept: a Lambda's import then builds only the schemas
 * its configuration needs, and each per-request schema is built once, when the first request
 * that needs it arrives.
 */
export function lazySchema<T>(build: () => T): () => T {
  let schema: T | undefined;
  return () => (schema ??= build());
}
