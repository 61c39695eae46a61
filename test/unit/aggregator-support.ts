import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { UpstreamError, type CallbackRequest, type UpstreamJob } from '../../lambdas/shared/providers/provider';

/** What an upstream POSTed to the callback URL it was given, as the callback route hands it on. */
export interface ReceivedCallback {
  url: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
}

/** A loopback stand-in for our callback route: records every POST. */
export async function startCallbackSink() {
  const received: ReceivedCallback[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, rawBody: Buffer.concat(chunks).toString('utf8') });
      res.end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** The callback URL the gateway would give for a task. */
    callbackUrl: (taskId: string) => `${url}/callbacks/upstream/${taskId}?token=tok-${taskId}`,
    /** The callbacks POSTed for one task so far, once there are `count` of them. */
    async waitFor(taskId: string, count = 1, timeoutMs = 5000): Promise<ReceivedCallback[]> {
      const deadline = Date.now() + timeoutMs;
      const mine = () => received.filter((r) => r.url.startsWith(`/callbacks/upstream/${taskId}?`));
      while (mine().length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} callbacks for ${taskId}, got ${mine().length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return mine();
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export const asCallbackRequest = (c: ReceivedCallback, upstreamId?: string): CallbackRequest => ({
  body: JSON.parse(c.rawBody) as unknown,
  rawBody: c.rawBody,
  headers: Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v])),
  upstreamId,
});

export function job(overrides: Partial<UpstreamJob> = {}): UpstreamJob {
  return {
    taskId: 'task_1',
    model: 'fal-ai/kling-video/v2.1/master/text-to-video',
    prompt: 'a red fox running through snow',
    aspectRatio: '16:9',
    duration: 5,
    imageUrls: [],
    characters: [],
    callbackUrl: 'http://127.0.0.1:9/callbacks/upstream/task_1?token=abc',
    ...overrides,
  };
}

export async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamError);
    return error as UpstreamError;
  }
  throw new Error('expected an UpstreamError');
}

export async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
