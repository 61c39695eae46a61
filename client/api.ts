import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { PublicModel as ModelView, TaskView } from '../lambdas/shared/contracts/view';

/**
 * A small client of the gateway's public API (seed dialect), for the `vtg` CLI. It speaks
 * only what any client may: the key's own tasks, the catalog, the video link.
 */

export type { PublicModel as ModelView, TaskView } from '../lambdas/shared/contracts/view';

export interface SubmitBody {
  model: string;
  prompt: string;
  duration?: number;
  aspect_ratio?: string;
  image_urls?: string[];
  callback_url?: string;
}

/** The gateway's JSON error, or a transport failure (status 0). */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

export class GatewayClient {
  private readonly base: string;

  constructor(
    url: string,
    private readonly key: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  submit(body: SubmitBody, idempotencyKey?: string): Promise<{ id: string }> {
    return this.json('POST', '/v1/videos/generations', body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  task(id: string): Promise<TaskView> {
    return this.json('GET', `/v1/videos/generations/${encodeURIComponent(id)}`);
  }

  list(limit: number, after?: string): Promise<{ data: TaskView[]; has_more: boolean; next_cursor: string | null }> {
    const query = new URLSearchParams({ limit: String(limit), ...(after ? { after } : {}) });
    return this.json('GET', `/v1/videos/generations?${query}`);
  }

  async models(): Promise<ModelView[]> {
    return (await this.json<{ data: ModelView[] }>('GET', '/v1/models')).data;
  }

  /**
   * Download a finished task's video to `file` (written beside it, then renamed, so a broken
   * transfer leaves no partial file under that name). `onBytes` sees the running total.
   */
  async download(id: string, file: string, onBytes?: (received: number, total: number | undefined) => void): Promise<number> {
    const response = await this.request('GET', `/v1/videos/generations/${encodeURIComponent(id)}/content`, undefined, {}, 'follow');
    if (!response.ok) throw await errorOf(response);
    const total = response.headers.get('content-length') ? Number(response.headers.get('content-length')) : undefined;
    let received = 0;
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      onBytes?.(received, total);
    });
    const partial = `${file}.part`;
    try {
      await pipeline(body, createWriteStream(partial));
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw new GatewayError(0, 'download_failed', `the download broke off: ${(error as Error).message}`);
    }
    return received;
  }

  private async json<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const response = await this.request(method, path, body, headers, 'manual');
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  private async request(method: string, path: string, body: unknown, headers: Record<string, string>, redirect: 'manual' | 'follow') {
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        redirect,
        headers: {
          authorization: `Bearer ${this.key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message ?? (error as Error).message;
      throw new GatewayError(0, 'unreachable', `cannot reach the gateway at ${this.base}: ${cause}`);
    }
  }
}

async function errorOf(response: Response): Promise<GatewayError> {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text) as { error: { code?: string; message?: string; param?: string } };
    return new GatewayError(response.status, error.code ?? 'error', error.message ?? text, error.param);
  } catch {
    return new GatewayError(response.status, 'error', `the gateway answered ${response.status}: ${text.slice(0, 200)}`);
  }
}
