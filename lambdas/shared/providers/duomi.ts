import { upstreamStatusSchema, upstreamSubmitBodySchema, upstreamSubmitResponseSchema } from '../contracts/upstream';
import { getText, operatorPolicy, postJson, type TextResult } from '../outbound';
import type { ProviderKind } from '../catalog';
import { capText, clampProgress, classifyAnswer, classifyTransport, isOk, phaseOf, safeJson, upstreamCaps, type Exchange } from './common';
import { UpstreamError, type CallbackRequest, type CreateProvider, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from './provider';

export interface DuomiOptions {
  /** The operator's name for this upstream. */
  name?: string;
  baseUrl: string;
  /** Resolved lazily: in AWS it is read from Secrets Manager. */
  apiKey: () => Promise<string>;
  timeoutMs: number;
}

/** A status answer is read whole up to this size (and its strings capped as parsed), so an oversized one still moves the task on. */
const STATUS_MAX_BYTES = 1024 * 1024;

/** The seed's provider: `POST /v1/videos/generations`, `GET /v1/videos/tasks/{id}`, callbacks of the same shape. */
export class DuomiProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'duomi';
  readonly callsBack = true;

  constructor(private readonly options: DuomiOptions) {
    this.name = options.name ?? 'duomi';
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    return this.created(await this.request('POST', '/v1/videos/generations', duomiBody(job)));
  }

  /** A submit's or remix's answer: the new job's id. */
  private created(response: TextResult): { upstreamId: string } {
    if (isOk(response)) {
      const parsed = upstreamSubmitResponseSchema().safeParse(safeJson(response.bodyText));
      if (parsed.success) return { upstreamId: parsed.data.id };
      throw new UpstreamError('unavailable', 'upstream accepted the task but sent no id', response.status);
    }
    throw classifyAnswer(response, 'submit');
  }

  /**
   * A new job from a finished one: `POST /v1/videos/{id}/remix` with the submit's body (the
   * new prompt; the original's duration and ratio, since the gateway keeps them), answered
   * `{id}` as a submit is. Images and characters belong to the original and are not sent again.
   */
  async remix(upstreamId: string, job: UpstreamJob): Promise<{ upstreamId: string }> {
    const body = duomiBody({ ...job, imageUrls: [], characters: [] });
    return this.created(await this.request('POST', `/v1/videos/${encodeURIComponent(upstreamId)}/remix`, body));
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.request('GET', `/v1/videos/tasks/${encodeURIComponent(upstreamId)}`);
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
    return this.parseStatus(safeJson(response.bodyText));
  }

  async parseCallback(request: CallbackRequest): Promise<UpstreamStatus> {
    return this.parseStatus(request.body);
  }

  /** A status answer or callback body of this dialect (the two have one shape). */
  parseStatus(body: unknown): UpstreamStatus {
    const parsed = upstreamStatusSchema().safeParse(body);
    if (!parsed.success) throw new UpstreamError('rejected', 'upstream status body has no state');
    // Every string is capped by the schema (`upstreamCaps`).
    const { id, state, progress, data, message } = parsed.data;
    return {
      upstreamId: id,
      phase: phaseOf(state),
      state,
      progress: clampProgress(progress),
      videoUrl: data?.videos?.[0]?.url || undefined,
      message: message ?? '',
    };
  }

  /** Over pooled keep-alive connections; `timeoutMs` bounds the whole exchange. */
  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<TextResult> {
    const { timeoutMs } = this.options;
    const url = `${this.options.baseUrl}${path}`;
    const options = { policy: operatorPolicy, timeoutMs, signal: AbortSignal.timeout(timeoutMs) };
    const headers = { authorization: await this.options.apiKey() };
    const during: Exchange = method === 'POST' ? 'submit' : 'poll';
    try {
      return method === 'POST'
        ? await postJson(url, JSON.stringify(body), headers, options)
        : await getText(url, { ...options, headers, maxResponseBytes: STATUS_MAX_BYTES });
    } catch (error) {
      throw classifyTransport(error, during, timeoutMs);
    }
  }
}

export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs }) =>
  new DuomiProvider({ name: upstream.name, baseUrl: upstream.baseUrl!, apiKey, timeoutMs });

/** The seed's request body with the route's model id. */
export const duomiBody = (job: UpstreamJob) =>
  upstreamSubmitBodySchema().parse({
    model: job.model,
    prompt: job.prompt,
    aspect_ratio: job.aspectRatio,
    duration: job.duration,
    image_urls: job.imageUrls.length ? job.imageUrls : undefined,
    characters: job.characters.length ? job.characters : undefined,
    callback_url: job.callbackUrl,
  });
