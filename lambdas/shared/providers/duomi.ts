import { upstreamStatusSchema, upstreamSubmitResponseSchema, type UpstreamSubmitBody } from '../contracts';
import { UpstreamError, type UpstreamPhase, type UpstreamProvider, type UpstreamStatus } from './provider';

export interface DuomiOptions {
  baseUrl: string;
  /** Resolved lazily: in AWS it is read from Secrets Manager. */
  apiKey: () => Promise<string>;
  timeoutMs: number;
}

const phases: Record<string, UpstreamPhase> = {
  pending: 'pending',
  queued: 'pending',
  running: 'running',
  processing: 'running',
  in_progress: 'running',
  succeeded: 'succeeded',
  success: 'succeeded',
  completed: 'succeeded',
  error: 'failed',
  failed: 'failed',
  failure: 'failed',
};

/** The seed's provider: `POST /v1/videos/generations`, `GET /v1/videos/tasks/{id}`, callbacks of the same shape. */
export class DuomiProvider implements UpstreamProvider {
  readonly name: string = 'duomi';

  constructor(private readonly options: DuomiOptions) {}

  async submit(body: UpstreamSubmitBody): Promise<{ upstreamId: string }> {
    const response = await this.request('POST', '/v1/videos/generations', body);
    const text = await response.text().catch(() => '');
    if (response.ok) {
      const parsed = upstreamSubmitResponseSchema.safeParse(safeJson(text));
      if (parsed.success) return { upstreamId: parsed.data.id };
      throw new UpstreamError('unavailable', 'upstream accepted the task but sent no id', response.status);
    }
    throw classify(response, text);
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.request('GET', `/v1/videos/tasks/${encodeURIComponent(upstreamId)}`);
    const text = await response.text().catch(() => '');
    if (!response.ok) throw classify(response, text, 'unavailable');
    return this.parseCallback(safeJson(text));
  }

  parseCallback(body: unknown): UpstreamStatus {
    const parsed = upstreamStatusSchema.safeParse(body);
    if (!parsed.success) throw new UpstreamError('rejected', 'upstream status body has no state');
    const { id, state, progress, data, message } = parsed.data;
    const word = state.trim().toLowerCase();
    const videoUrl = data?.videos?.[0]?.url || undefined;
    return {
      upstreamId: id,
      phase: phases[word] ?? 'running',
      state,
      progress: Math.max(0, Math.min(100, Number.isFinite(progress) ? Math.round(progress ?? 0) : 0)),
      videoUrl,
      message: message ?? '',
    };
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
    const key = await this.options.apiKey();
    try {
      return await fetch(`${this.options.baseUrl}${path}`, {
        method,
        headers: { authorization: key, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new UpstreamError(
        'unavailable',
        timedOut ? `upstream did not answer within ${this.options.timeoutMs} ms` : `upstream unreachable: ${(error as Error).message}`,
      );
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Rate limits, outages and our own credentials are worth retrying; other 4xx are the request's fault. */
function classify(response: Response, text: string, kind?: 'unavailable'): UpstreamError {
  const body = safeJson(text) as { error?: { message?: unknown; code?: unknown } | string; message?: unknown; code?: unknown } | undefined;
  const nested = typeof body?.error === 'object' ? body.error : undefined;
  const message =
    [nested?.message, typeof body?.error === 'string' ? body.error : undefined, body?.message].find(
      (m): m is string => typeof m === 'string' && m.length > 0,
    ) ?? (text.slice(0, 200) || `HTTP ${response.status}`);
  const code = [nested?.code, body?.code].find((c): c is string => typeof c === 'string');
  const status = response.status;
  const retryable = kind === 'unavailable' || status >= 500 || [401, 403, 404, 408, 409, 425, 429].includes(status);
  const retryAfter = Number(response.headers.get('retry-after'));
  return new UpstreamError(
    retryable ? 'unavailable' : 'rejected',
    `upstream answered ${status}: ${message}`.slice(0, 500),
    status,
    code,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
}
