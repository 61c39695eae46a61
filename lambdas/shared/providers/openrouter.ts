import * as z from 'zod/mini';
import type { ProviderKind } from '../catalog';
import type { TextResult } from '../outbound';
import { UpstreamError, type CallbackRequest, type CreateProvider, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from './provider';
import { classifyAnswer, isOk, phaseOf, safeJson } from './common';
import { callUpstream, type HttpUpstreamOptions } from './upstream-http';
import { videoAuth } from './video-auth';

/**
 * OpenRouter's video generation API (`baseUrl` https://openrouter.ai/api/v1):
 *
 *   POST {base}/videos          {model, prompt, duration, aspect_ratio, resolution?, size?,
 *                                frame_images?, callback_url}  -> {id, polling_url, status: "pending"}
 *   GET  {base}/videos/{id}     -> {id, status, unsigned_urls?, urls?, usage: {cost}, error?}
 *   GET  {base}/videos/{id}/content?index=0   the video, with our key
 *
 * Statuses: pending, in_progress, then completed, or failed, cancelled or expired. The
 * webhook (`{type: "video.generation.completed", data: {id, …}}`) is taken only as a name:
 * what happened is asked of the job's status with our key, so a forged one changes nothing.
 * The API documents no cancel.
 */

export const openrouterJobSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  status: z.string(),
  urls: z.optional(z.nullable(z.array(z.string()))),
  unsigned_urls: z.optional(z.nullable(z.array(z.string()))),
  usage: z.optional(z.nullable(z.looseObject({ cost: z.optional(z.nullable(z.number())) }))),
  error: z.optional(z.nullable(z.unknown())),
});

export const openrouterWebhookSchema = z.looseObject({
  type: z.optional(z.string()),
  data: z.looseObject({ id: z.string().check(z.minLength(1)) }),
});

export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs }) =>
  new OpenRouterProvider({ name: upstream.name, baseUrl: upstream.baseUrl!, apiKey, timeoutMs });

export function openrouterBody(job: UpstreamJob): Record<string, unknown> {
  const image = job.imageUrls[0];
  return {
    model: job.model,
    prompt: job.prompt,
    duration: job.duration,
    aspect_ratio: job.aspectRatio,
    ...(job.resolution ? { resolution: job.resolution } : {}),
    ...(job.size ? { size: job.size } : {}),
    ...(image ? { frame_images: [{ type: 'image_url', image_url: { url: image }, frame_type: 'first_frame' }] } : {}),
    callback_url: job.callbackUrl,
  };
}

export class OpenRouterProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'openrouter';
  readonly callsBack = true;

  constructor(private readonly options: HttpUpstreamOptions) {
    this.name = options.name ?? 'openrouter';
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    const response = await this.call('POST', `${this.options.baseUrl}/videos`, openrouterBody(job), true);
    if (!isOk(response)) throw classifyAnswer(response, 'submit');
    const parsed = z.looseObject({ id: z.string().check(z.minLength(1)) }).safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('ambiguous', 'openrouter accepted the job but sent no id', response.status);
    return { upstreamId: parsed.data.id };
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.call('GET', `${this.options.baseUrl}/videos/${encodeURIComponent(upstreamId)}`);
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
    const parsed = openrouterJobSchema.safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('unavailable', 'openrouter job answer has no id and status');
    const { id, status, urls, unsigned_urls: unsignedUrls, usage, error } = parsed.data;
    const phase = phaseOf(status);
    // The signed storage URL needs no key; the content endpoint (relative or not) is on the operator's host.
    const link = urls?.[0] ?? unsignedUrls?.[0];
    const message =
      phase !== 'failed' ? '' : typeof error === 'string' && error ? error : `the video job ended ${status}`;
    return {
      upstreamId: id,
      phase,
      state: status,
      progress: phase === 'succeeded' ? 100 : 0,
      videoUrl: phase === 'succeeded' && link ? new URL(link, this.options.baseUrl).href : undefined,
      cost: typeof usage?.cost === 'number' ? usage.cost : undefined,
      message,
    };
  }

  async parseCallback(request: CallbackRequest): Promise<UpstreamStatus> {
    const parsed = openrouterWebhookSchema.safeParse(request.body);
    if (!parsed.success) throw new UpstreamError('rejected', 'openrouter webhook body has no data.id');
    if (request.upstreamId && request.upstreamId !== parsed.data.data.id)
      throw new UpstreamError('rejected', 'openrouter webhook names another job than the task holds');
    return this.status(parsed.data.data.id);
  }

  private async call(method: 'GET' | 'POST', url: string, body?: unknown, createsJob = false): Promise<TextResult> {
    // The same key header as the content endpoint (`unsigned_urls`) wants (providers/video-auth.ts).
    const headers = { ...videoAuth.openrouter!(await this.options.apiKey()), accept: 'application/json' };
    return callUpstream({ method, url, headers, body, timeoutMs: this.options.timeoutMs, createsJob });
  }
}
