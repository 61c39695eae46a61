import * as z from 'zod/mini';
import type { ProviderKind } from '../catalog';
import type { TextResult } from '../outbound';
import { falInput } from './fal-models';
import { UpstreamError, type CallbackRequest, type CreateProvider, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from './provider';
import { classifyAnswer, errorDetails, isOk, phaseOf, safeJson } from './common';
import { callUpstream, type HttpUpstreamOptions } from './upstream-http';

/**
 * fal's queue API (`baseUrl` https://queue.fal.run):
 *
 *   POST {base}/{model id}?fal_webhook=<callback URL>   -> {request_id, status_url, response_url, cancel_url}
 *   GET  {base}/{owner}/{app}/requests/{id}/status      -> {status: IN_QUEUE | IN_PROGRESS | COMPLETED, error?}
 *   GET  {base}/{owner}/{app}/requests/{id}             -> the model's output ({video: {url}})
 *   PUT  {base}/{owner}/{app}/requests/{id}/cancel
 *
 * The status, result and cancel URLs name only the owner and app, not the endpoint path
 * (`fal-ai/kling-video/v2.1/master/text-to-video` is polled under `fal-ai/kling-video`), so
 * the upstream id is the request's path under the queue root: `{owner}/{app}/requests/{id}`.
 *
 * fal's webhook body (`{request_id, status: OK | ERROR, payload}`) is never believed on its
 * own: it only names the request, and the status and result endpoints say what happened.
 */

export const falSubmitResponseSchema = z.looseObject({
  request_id: z.string().check(z.minLength(1)),
  response_url: z.optional(z.string()),
});

export const falStatusSchema = z.looseObject({
  status: z.string(),
  queue_position: z.optional(z.nullable(z.number())),
  error: z.optional(z.nullable(z.string())),
  error_type: z.optional(z.nullable(z.string())),
});

export const falResultSchema = z.looseObject({
  video: z.optional(z.nullable(z.looseObject({ url: z.optional(z.string()) }))),
});

export const falWebhookSchema = z.looseObject({
  request_id: z.string().check(z.minLength(1)),
  status: z.string(),
});


export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs }) =>
  new FalProvider({ name: upstream.name, baseUrl: upstream.baseUrl!, apiKey, timeoutMs });

/** Endpoint ids under these namespaces have three leading segments (`workflows/{owner}/{app}`). */
const namespaces = new Set(['workflows', 'comfy']);

/** The `{owner}/{app}` part of an endpoint id, under which fal keeps its requests. */
export function falApp(modelId: string): string {
  const parts = modelId.split('/').filter(Boolean);
  const take = namespaces.has(parts[0] ?? '') ? 3 : 2;
  if (parts.length < take) throw new UpstreamError('unavailable', `fal model id ${modelId} is not {owner}/{app}[/path]`);
  return parts.slice(0, take).join('/');
}

const requestIdOf = (upstreamId: string) => upstreamId.slice(upstreamId.lastIndexOf('/') + 1);

export class FalProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'fal';
  readonly callsBack = true;

  constructor(private readonly options: HttpUpstreamOptions) {
    this.name = options.name ?? 'fal';
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    const app = falApp(job.model);
    const url = `${this.options.baseUrl}/${job.model.split('/').map(encodeURIComponent).join('/')}?fal_webhook=${encodeURIComponent(job.callbackUrl)}`;
    const response = await this.call('POST', url, falInput(job), true);
    if (!isOk(response)) throw classifyAnswer(response, 'submit');
    const parsed = falSubmitResponseSchema.safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('ambiguous', 'fal accepted the request but sent no request_id', response.status);
    return { upstreamId: this.upstreamIdOf(app, parsed.data.request_id, parsed.data.response_url) };
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.call('GET', `${this.options.baseUrl}/${upstreamId}/status`);
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
    const parsed = falStatusSchema.safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('unavailable', 'fal status answer has no status');
    const { status, error, error_type: errorType } = parsed.data;
    const phase = phaseOf(status);
    const base = { upstreamId, state: status, progress: 0, message: '' };
    if (phase !== 'succeeded') return { ...base, phase };
    if (error) return { ...base, phase: 'failed', message: errorType ? `${error} (${errorType})` : error };
    return this.result(upstreamId, status);
  }

  /** The webhook only names the request: what happened is asked of fal, with our key. */
  async parseCallback(request: CallbackRequest): Promise<UpstreamStatus> {
    const parsed = falWebhookSchema.safeParse(request.body);
    if (!parsed.success) throw new UpstreamError('rejected', 'fal webhook body has no request_id and status');
    if (!request.upstreamId) throw new UpstreamError('rejected', 'no fal request is recorded for this task');
    if (requestIdOf(request.upstreamId) !== parsed.data.request_id)
      throw new UpstreamError('rejected', 'fal webhook names another request than the task holds');
    return this.status(request.upstreamId);
  }

  async cancel(upstreamId: string): Promise<void> {
    const response = await this.call('PUT', `${this.options.baseUrl}/${upstreamId}/cancel`);
    if (isOk(response)) return;
    // Nothing is left to stop once the request has finished.
    if (response.status === 400 && /ALREADY_COMPLETED/.test(response.bodyText)) return;
    throw classifyAnswer(response, 'poll');
  }

  private async result(upstreamId: string, state: string): Promise<UpstreamStatus> {
    const response = await this.call('GET', `${this.options.baseUrl}/${upstreamId}`);
    const base = { upstreamId, state, progress: 100, message: '' };
    if (!isOk(response)) {
      // A request that failed in the model answers its result with the model's error.
      if (response.status >= 400 && response.status < 500 && ![401, 403, 404, 429].includes(response.status))
        return { ...base, phase: 'failed', message: errorDetails(response.bodyText, response.status).message };
      throw classifyAnswer(response, 'poll');
    }
    const parsed = falResultSchema.safeParse(safeJson(response.bodyText));
    const videoUrl = parsed.success ? parsed.data.video?.url || undefined : undefined;
    return { ...base, phase: 'succeeded', videoUrl };
  }

  /** The request's path under the queue root, from fal's own `response_url` where it gives one under ours. */
  private upstreamIdOf(app: string, requestId: string, responseUrl: string | undefined): string {
    const root = `${this.options.baseUrl}/`;
    if (responseUrl?.startsWith(root)) {
      const path = responseUrl.slice(root.length).split('?')[0]!;
      if (path.endsWith(`/requests/${requestId}`)) return path;
    }
    return `${app}/requests/${requestId}`;
  }

  private async call(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, createsJob = false): Promise<TextResult> {
    const headers = { authorization: `Key ${await this.options.apiKey()}`, accept: 'application/json' };
    return callUpstream({ method, url, headers, body, timeoutMs: this.options.timeoutMs, createsJob });
  }
}
