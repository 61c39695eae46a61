/**
 * Stands in for `node:stream/web` in the Lambda bundles (an esbuild alias: `bundleAliases` in
 * `lib/gateway-function.ts`). middy's core imports `ReadableStream` from it only to test the
 * body of a streamed response (`streamifyResponse`, which no handler of ours uses), and
 * importing that module loads Node's whole web streams implementation on every cold start:
 * several milliseconds, more than the rest of middy. This is Node's own class, reached through
 * the global, which Node loads on first use; so the test still works if a handler ever
 * streams, and any other name imported from `node:stream/web` fails the build.
 */
export const ReadableStream: typeof globalThis.ReadableStream = new Proxy(function ReadableStream() {} as unknown as typeof globalThis.ReadableStream, {
  construct: (_target, args) => Reflect.construct(globalThis.ReadableStream, args) as object,
  get: (_target, key) => Reflect.get(globalThis.ReadableStream, key) as unknown,
});
