import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The HTTP plumbing of the simulated upstreams (the MP4s they serve come from `serveVideo` in `simulated-upstream.ts`). */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new HttpError(413, 'body_too_large', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

/** The key of an `Authorization` header: `<scheme> <key>` or the bare key. */
export function presentedKey(header: string | undefined, scheme = 'Bearer'): string | undefined {
  if (header === undefined) return undefined;
  const m = new RegExp(`^${scheme}\\s+(.+)$`, 'i').exec(header.trim());
  return (m?.[1] ?? header).trim();
}

/** mulberry32: small, fast and good enough to pick which requests fail in a load test. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HttpServer {
  url: string;
  port: number;
  /** Aborted when the server closes: timers and callbacks stop with it. */
  closing: AbortSignal;
  /** Stops listening, destroys open and stalled connections. */
  close(): Promise<void>;
}

/**
 * A loopback HTTP server whose handler throws `HttpError` for error answers; `errorBody`
 * shapes them in the dialect's own way.
 */
export async function startHttpServer(options: {
  host?: string;
  port?: number;
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  errorBody?: (err: HttpError) => unknown;
  log?: (msg: string, fields?: object) => void;
}): Promise<HttpServer> {
  const log = options.log ?? (() => {});
  const errorBody = options.errorBody ?? ((err: HttpError) => ({ error: { message: err.message, code: err.code } }));
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  const server = createServer((req, res) => {
    options.handle(req, res).catch((err: unknown) => {
      const httpError = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'internal server error');
      if (!(err instanceof HttpError)) log('request failed', { url: req.url, error: (err as Error).message });
      if (res.headersSent) res.destroy();
      else sendJson(res, httpError.status, errorBody(httpError), httpError.headers);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('simulated upstream has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    closing: closing.signal,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}
