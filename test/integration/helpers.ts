import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { startLocalGateway, type LocalGateway, type LocalGatewayOptions } from '../../local/gateway';

export interface Harness {
  gw: LocalGateway;
  dataDir: string;
  api(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  submit(body: unknown, headers?: Record<string, string>): Promise<Response>;
  waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  waitForStatus(id: string, status: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

/** The real local gateway in a fresh data directory, driven over HTTP. */
export async function startHarness(options: Partial<LocalGatewayOptions> = {}): Promise<Harness> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'vtg-'));
  const gw = await startLocalGateway({ renderMs: 300, reconcileEveryMs: 3_600_000, ...options, dataDir });
  const api = (path: string, init: RequestInit & { key?: string | null } = {}) => {
    const { key, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (key !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${key ?? gw.apiKey}`);
    return fetch(`${gw.url}${path}`, { ...rest, headers, redirect: 'manual' });
  };
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    gw,
    dataDir,
    api,
    submit: (body, headers = {}) =>
      api('/v1/videos/generations', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    waitFor,
    waitForStatus: (id, status, timeoutMs) =>
      waitFor(`task ${id} to be ${status}`, async () => {
        const view = (await (await api(`/v1/videos/generations/${id}`)).json()) as { status: string };
        return view.status === status ? view : undefined;
      }, timeoutMs),
    async close() {
      await gw.stop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HookDelivery {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A webhook receiver on loopback whose answer to the n-th delivery (0-based) is `respond(n)`;
 * it can listen on a given port, so a test can take a client endpoint down and bring it back.
 */
export async function startHookReceiver(options: { port?: number; respond?: (n: number) => number; deliveries?: HookDelivery[] } = {}) {
  const deliveries = options.deliveries ?? [];
  const respond = options.respond ?? (() => 200);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = deliveries.length;
      deliveries.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(respond(n), { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
export type HookReceiver = Awaited<ReturnType<typeof startHookReceiver>>;

/** The seed document's three request examples, as they stand. */
export const seedExamples = {
  generate: {
    model: 'sora-2',
    prompt: 'The car moves forward at a high speed',
    aspect_ratio: '16:9',
    duration: 15,
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
  },
  characters: {
    model: 'sora-2',
    prompt: 'The car moves forward at a high speed',
    aspect_ratio: '16:9',
    duration: 15,
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
    characters: [
      { url: 'https://v3.fal.media/files/penguin/hsR_KXBJjuF3IIVYIIDA2_output.mp4', timestamps: '0,3' },
      { url: 'https://v3.fal.media/files/penguin/hsR_KXBJjuF3IIVYIIDA2_output.mp4', timestamps: '0,3' },
    ],
    callback_url: 'https://webhook.site/f95d67b6-cbc4-475d-9ea8-93e3c1786d45',
  },
  imageToVideo: {
    model: 'sora-2',
    prompt: '唱歌',
    aspect_ratio: '16:9',
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
    duration: 15,
    callback_url: 'https://webhook.site/2ef1a017-6ebd-4f15-9c9a-5ac3652e4abd',
  },
} as const;

/** Polls a video through the official SDK until it has `status`: `const until = videoUntil(() => h, () => client)`. */
export const videoUntil =
  (harness: () => Harness, sdk: () => OpenAI) =>
  (id: string, status: string) =>
    harness().waitFor(`video ${id} to be ${status}`, async () => {
      const video = await sdk().videos.retrieve(id);
      return video.status === status ? video : undefined;
    });
