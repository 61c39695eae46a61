import { describe, expect, it } from 'vitest';
import { ReadableStream as StandIn } from '../../lambdas/shared/lazy-web-streams';

describe("the bundles' stand-in for node:stream/web", () => {
  it("is Node's ReadableStream to instanceof, as middy's core tests a streamed body", () => {
    expect(new globalThis.ReadableStream() instanceof StandIn).toBe(true);
    expect({} instanceof StandIn).toBe(false);
  });

  it("constructs Node's own streams, and carries its statics", async () => {
    const stream = new StandIn<string>({
      start(controller) {
        controller.enqueue('a');
        controller.close();
      },
    });
    expect(stream).toBeInstanceOf(globalThis.ReadableStream);
    const chunks: string[] = [];
    for await (const chunk of stream as AsyncIterable<string>) chunks.push(chunk);
    expect(chunks).toEqual(['a']);
    expect(StandIn.prototype).toBe(globalThis.ReadableStream.prototype);
  });
});
