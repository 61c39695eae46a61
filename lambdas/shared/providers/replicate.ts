import { Webhook } from 'standardwebhooks';
import * as z from 'zod/mini';
import type { ProviderKind } from '../catalog';
import type { TextResult } from '../outbound';
import { UpstreamError, type CallbackRequest, type CreateProvider, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from './provider';
import { classifyAnswer, isOk, phaseOf, safeJson } from './common';
import { callUpstream, type HttpUpstreamOptions } from './upstream-http';

/**
 * Replicate's predictions API (`baseUrl` https://api.replicate.com/v1):
 *
 *   POST {base}/models/{owner}/{name}/predictions   (route model `owner/name`)
 *   POST {base}/predictions with `version`          (route model `owner/name:version`)
 *        {input, webhook, webhook_events_filter: ["completed"]}  -> 201 prediction
 *   GET  {base}/predictions/{id}                    -> prediction
 *   POST {base}/predictions/{id}/cancel
 *
 * A prediction's status is starting, processing, succeeded, failed or canceled; its output
 * a URL or a list of URLs. Webhooks carry the prediction and are signed per Standard
 * Webhooks with the account's signing secret; one that is unsigned or badly signed is refused.
 */

export interface ReplicateOptions extends HttpUpstreamOptions {
  /**
   * The account's webhook signing secret (`whsec_…`), resolved lazily like the key. Absent:
   * read from the API with the key (`GET /webhooks/default/secret`), once per process.
   */
  webhookSecret?: () => Promise<string | undefined>;
}

export const replicateSecretSchema = z.looseObject({ key: z.string().check(z.minLength(1)) });

export const replicatePredictionSchema = z.looseObject({
  id: z.string().check(z.minLength(1)),
  status: z.string(),
  output: z.optional(z.unknown()),
  error: z.optional(z.unknown()),
});
export type ReplicatePrediction = z.infer<typeof replicatePredictionSchema>;

/** The webhook signing secret is the entry's `webhookSecret` (local use), else the account's, asked of the API. */
export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs }) =>
  new ReplicateProvider({
    name: upstream.name,
    baseUrl: upstream.baseUrl!,
    apiKey,
    timeoutMs,
    webhookSecret: upstream.webhookSecret === undefined ? undefined : async () => upstream.webhookSecret,
  });

/**
 * The prediction input: the fields Replicate's video models share (prompt, duration in
 * seconds, aspect_ratio, resolution); Kling names its first frame `start_image`, the others `image`.
 */
export function replicateInput(job: UpstreamJob): Record<string, string | number> {
  const input: Record<string, string | number> = { prompt: job.prompt, duration: job.duration, aspect_ratio: job.aspectRatio };
  if (job.resolution) input.resolution = job.resolution;
  const image = job.imageUrls[0];
  if (image) input[/kling/i.test(job.model) ? 'start_image' : 'image'] = image;
  return input;
}

/** The first URL of an output that is a URL, a list of URLs, or an object holding a `video` URL. */
function firstUrl(output: unknown): string | undefined {
  if (typeof output === 'string') return /^https?:\/\//.test(output) ? output : undefined;
  if (Array.isArray(output)) return output.map(firstUrl).find((u) => u !== undefined);
  if (typeof output === 'object' && output !== null) return firstUrl((output as { video?: unknown }).video);
  return undefined;
}

export class ReplicateProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'replicate';
  readonly callsBack = true;
  private signingSecret: Promise<string> | undefined;

  constructor(private readonly options: ReplicateOptions) {
    this.name = options.name ?? 'replicate';
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    const [model, version] = job.model.split(':', 2);
    const [owner, name] = (model ?? '').split('/');
    if (!owner || !name) throw new UpstreamError('unavailable', `replicate model ${job.model} is not owner/name[:version]`);
    const request = { input: replicateInput(job), webhook: job.callbackUrl, webhook_events_filter: ['completed'] };
    const response = version
      ? await this.call('POST', `${this.options.baseUrl}/predictions`, { ...request, version }, true)
      : await this.call('POST', `${this.options.baseUrl}/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/predictions`, request, true);
    if (!isOk(response)) throw classifyAnswer(response, 'submit');
    const parsed = replicatePredictionSchema.safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('ambiguous', 'replicate accepted the prediction but sent no id', response.status);
    return { upstreamId: parsed.data.id };
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.call('GET', `${this.options.baseUrl}/predictions/${encodeURIComponent(upstreamId)}`);
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
    return this.parsePrediction(safeJson(response.bodyText), 'unavailable');
  }

  async parseCallback(request: CallbackRequest): Promise<UpstreamStatus> {
    const secret = await (this.options.webhookSecret ?? (() => this.accountSecret()))();
    if (!secret) throw new UpstreamError('rejected', 'replicate webhooks need the upstream webhookSecret to be verified');
    try {
      new Webhook(secret).verify(request.rawBody, {
        'webhook-id': request.headers['webhook-id'] ?? '',
        'webhook-timestamp': request.headers['webhook-timestamp'] ?? '',
        'webhook-signature': request.headers['webhook-signature'] ?? '',
      });
    } catch (error) {
      throw new UpstreamError('rejected', `replicate webhook signature refused: ${(error as Error).message}`);
    }
    return this.parsePrediction(request.body, 'rejected');
  }

  async cancel(upstreamId: string): Promise<void> {
    const response = await this.call('POST', `${this.options.baseUrl}/predictions/${encodeURIComponent(upstreamId)}/cancel`);
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
  }

  /** The account's signing secret, from the API; a failed read is tried again on the next webhook. */
  private accountSecret(): Promise<string> {
    this.signingSecret ??= (async () => {
      const response = await this.call('GET', `${this.options.baseUrl}/webhooks/default/secret`);
      if (!isOk(response)) throw classifyAnswer(response, 'poll');
      const parsed = replicateSecretSchema.safeParse(safeJson(response.bodyText));
      if (!parsed.success) throw new UpstreamError('unavailable', 'replicate sent no webhook signing secret');
      return parsed.data.key;
    })();
    this.signingSecret.catch(() => (this.signingSecret = undefined));
    return this.signingSecret;
  }

  parsePrediction(body: unknown, unreadable: 'rejected' | 'unavailable'): UpstreamStatus {
    const parsed = replicatePredictionSchema.safeParse(body);
    if (!parsed.success) throw new UpstreamError(unreadable, 'replicate prediction has no id and status');
    const { id, status, output, error } = parsed.data;
    const phase = phaseOf(status);
    const message =
      phase !== 'failed' ? '' : typeof error === 'string' && error ? error : status === 'failed' ? 'the prediction failed' : `the prediction was ${status}`;
    return {
      upstreamId: id,
      phase,
      state: status,
      progress: phase === 'succeeded' ? 100 : 0,
      videoUrl: phase === 'succeeded' ? firstUrl(output) : undefined,
      message,
    };
  }

  private async call(method: 'GET' | 'POST', url: string, body?: unknown, createsJob = false): Promise<TextResult> {
    const headers = { authorization: `Bearer ${await this.options.apiKey()}`, accept: 'application/json' };
    return callUpstream({ method, url, headers, body, timeoutMs: this.options.timeoutMs, createsJob });
  }
}
