import { upstreamStatusSchema, upstreamSubmitBodySchema, upstreamSubmitResponseSchema } from '../contracts/upstream';
import { getText, operatorPolicy, OutboundError, postJson, type TextResult } from '../outbound';
import type { ProviderKind } from '../catalog';
import { UpstreamError, type CallbackRequest, type UpstreamJob, type UpstreamPhase, type UpstreamProvider, type UpstreamStatus } from './provider';

export interface DuomiOptions {
  /** The operator's name for this upstream. */
  name?: string;
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
  readonly name: string;
  readonly kind: ProviderKind = 'duomi';
  readonly callsBack = true;

  constructor(private readonly options: DuomiOptions) {
    this.name = options.name ?? 'duomi';
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    const response = await this.request('POST', '/v1/videos/generations', duomiBody(job));
    if (ok(response)) {
      const parsed = upstreamSubmitResponseSchema.safeParse(safeJson(response.bodyText));
      if (parsed.success) return { upstreamId: parsed.data.id };
      throw new UpstreamError('unavailable', 'upstream accepted the task but sent no id', response.status);
    }
    throw classify(response);
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.request('GET', `/v1/videos/tasks/${encodeURIComponent(upstreamId)}`);
    if (!ok(response)) throw classify(response, 'unavailable');
    return this.parseStatus(safeJson(response.bodyText));
  }

  async parseCallback(request: CallbackRequest): Promise<UpstreamStatus> {
    return this.parseStatus(request.body);
  }

  /** A status answer or callback body of this dialect (the two have one shape). */
  parseStatus(body: unknown): UpstreamStatus {
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

  /** Over pooled keep-alive connections; `timeoutMs` bounds the whole exchange. */
  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<TextResult> {
    const { timeoutMs } = this.options;
    const url = `${this.options.baseUrl}${path}`;
    const options = { policy: operatorPolicy, timeoutMs, signal: AbortSignal.timeout(timeoutMs) };
    const headers = { authorization: await this.options.apiKey() };
    try {
      return method === 'POST'
        ? await postJson(url, JSON.stringify(body), headers, options)
        : await getText(url, { ...options, headers });
    } catch (error) {
      const timedOut = error instanceof OutboundError && (error.code === 'timeout' || error.code === 'aborted');
      throw new UpstreamError(
        'unavailable',
        timedOut ? `upstream did not answer within ${timeoutMs} ms` : `upstream unreachable: ${(error as Error).message}`,
      );
    }
  }
}

/** The seed's request body with the route's model id. */
export const duomiBody = (job: UpstreamJob) =>
  upstreamSubmitBodySchema.parse({
    model: job.model,
    prompt: job.prompt,
    aspect_ratio: job.aspectRatio,
    duration: job.duration,
    image_urls: job.imageUrls.length ? job.imageUrls : undefined,
    characters: job.characters.length ? job.characters : undefined,
    callback_url: job.callbackUrl,
  });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const ok = (response: TextResult) => response.status >= 200 && response.status < 300;

/** Rate limits, outages and our own credentials are worth retrying; other 4xx are the request's fault. */
function classify(response: TextResult, kind?: 'unavailable'): UpstreamError {
  const text = response.bodyText;
  const body = safeJson(text) as { error?: { message?: unknown; code?: unknown } | string; message?: unknown; code?: unknown } | undefined;
  const nested = typeof body?.error === 'object' ? body.error : undefined;
  const message =
    [nested?.message, typeof body?.error === 'string' ? body.error : undefined, body?.message].find(
      (m): m is string => typeof m === 'string' && m.length > 0,
    ) ?? (text.slice(0, 200) || `HTTP ${response.status}`);
  const code = [nested?.code, body?.code].find((c): c is string => typeof c === 'string');
  const status = response.status;
  const retryable = kind === 'unavailable' || status >= 500 || [401, 403, 404, 408, 409, 425, 429].includes(status);
  const retryAfter = Number(response.headers['retry-after']);
  return new UpstreamError(
    retryable ? 'unavailable' : 'rejected',
    `upstream answered ${status}: ${message}`.slice(0, 500),
    status,
    code,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
}
