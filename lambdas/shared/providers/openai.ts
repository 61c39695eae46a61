import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { orElse } from '../contracts/fields';
import { fetchImage, ImageFetchError } from '../images';
import type { ProviderKind } from '../catalog';
import { clientUrlPolicy, getText, operatorPolicy, OutboundError, postBody, postJson, type OutboundPolicy, type TextResult } from '../outbound';
import { capText, clampProgress, classifyAnswer, classifyTransport, isOk, phaseOf, safeJson, upstreamCaps, type Exchange } from './common';
import { videoAuth } from './video-auth';
import { UpstreamError, type CreateProvider, type UpstreamJob, type UpstreamProvider, type UpstreamStatus } from './provider';

/**
 * Any OpenAI-compatible `/v1/videos` upstream: the new-api / one-api style resellers that
 * serve Seedance, Wan or Kling through the shape OpenAI gave its Videos API.
 *
 *   POST {baseUrl}/videos                 multipart: prompt, model, seconds, size, input_reference
 *   GET  {baseUrl}/videos/{id}            {id, status, progress, error: {message, code}}
 *   GET  {baseUrl}/videos/{id}/content    the MP4, with the upstream key
 *   GET  {baseUrl}/videos?limit&after&order=desc   recent jobs, to find one after an ambiguous submit
 *   POST {baseUrl}/videos/{id}/remix      {prompt}
 *
 * It never calls back (the poll worker asks it on a cadence) and has no cancel (DELETE
 * removes a finished video's files; it does not stop a job).
 */

export interface OpenAIOptions {
  /** The operator's name for this upstream. */
  name?: string;
  /** The `/v1` level of the API, no trailing slash. */
  baseUrl: string;
  /** Resolved lazily: in AWS it is read from Secrets Manager. */
  apiKey: () => Promise<string>;
  timeoutMs: number;
  /**
   * For fetching the client's reference image, a URL a client handed us: public hosts only
   * outside local mode. Default `clientUrlPolicy(false)`.
   */
  imagePolicy?: OutboundPolicy;
}

export const createProvider: CreateProvider = ({ upstream, apiKey, timeoutMs, config }) =>
  new OpenAIProvider({ name: upstream.name, baseUrl: upstream.baseUrl!, apiKey, timeoutMs, imagePolicy: clientUrlPolicy(config.LOCAL_MODE) });

/** One job as the dialect shows it. new-api relays also send `task_id`; its own id is `id`. */
export const openaiVideoSchema = z.looseObject({
  id: z.optional(z.pipe(z.union([z.string().check(z.minLength(1)), z.number()]), z.transform(String))),
  task_id: z.optional(z.pipe(z.union([z.string().check(z.minLength(1)), z.number()]), z.transform(String))),
  status: z.string(),
  progress: z.optional(z.unknown()),
  created_at: z.optional(orElse(z.number(), 0)),
  model: z.nullish(z.string()),
  prompt: z.nullish(z.string()),
  seconds: z.nullish(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
  size: z.nullish(z.string()),
  error: z.nullish(z.looseObject({ message: z.nullish(z.string()), code: z.nullish(z.string()) })),
});
export type OpenAIVideo = z.infer<typeof openaiVideoSchema>;

export const openaiVideoListSchema = z.looseObject({
  data: z.array(openaiVideoSchema),
  has_more: z.optional(orElse(z.boolean(), false)),
  last_id: z.nullish(z.string()),
});

/**
 * The size sent when the route names none: the 720p class of each ratio, portrait for 9:16,
 * landscape for 16:9, square for 1:1 (a route's `sizes` picks another resolution).
 */
export const defaultSizes: Readonly<Record<string, string>> = {
  '16:9': '1280x720',
  '9:16': '720x1280',
  '1:1': '960x960',
  '4:3': '960x720',
  '3:4': '720x960',
  '21:9': '1680x720',
};

/** Reference images are sent as files, read up to this size. */
const maxImageBytes = 10 * 1024 * 1024;
/** Recent jobs asked for per page, and pages read at most, when looking for a job. */
const listPageSize = 50;
const listPagesAtMost = 4;
/** Slack for the upstream's clock against ours when comparing `created_at` with our submit time. */
const clockSkewSeconds = 60;

export interface FormFile {
  name: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** A multipart/form-data body (RFC 7578): text fields, then files. Names and filenames are ours, never a client's. */
export function multipartBody(fields: ReadonlyArray<readonly [string, string]>, files: readonly FormFile[] = []): { body: Buffer; contentType: string } {
  const boundary = `----video-gateway-${randomBytes(12).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`, 'utf8'));
  }
  for (const file of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\ncontent-type: ${file.contentType}\r\n\r\n`,
        'utf8',
      ),
      file.bytes,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

export class OpenAIProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'openai';
  readonly callsBack = false;

  constructor(private readonly options: OpenAIOptions) {
    this.name = options.name ?? 'openai';
  }

  /** The form fields this job is sent with (the ones `findJob` matches on, too). */
  fields(job: UpstreamJob): [string, string][] {
    return [
      ['model', job.model],
      ['prompt', job.prompt],
      ['seconds', String(job.duration)],
      ['size', job.size ?? defaultSizes[job.aspectRatio] ?? defaultSizes['16:9']!],
    ];
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    // The reference goes as a file part: OpenAI's API answers a string `input_reference`
    // with "expected a file", and new-api relays forward the form's file parts as they are,
    // whereas `input_reference[image_url]` is a later addition not every relay's upstream knows.
    const files = job.imageUrls[0] === undefined ? [] : [await this.referenceImage(job.imageUrls[0])];
    const form = multipartBody(this.fields(job), files);
    const response = await this.exchange('submit', async () =>
      postBody(this.url('/videos'), form.body, { 'content-type': form.contentType }, await this.outbound()),
    );
    return this.accepted(response);
  }

  async remix(upstreamId: string, job: UpstreamJob): Promise<{ upstreamId: string }> {
    const response = await this.exchange('submit', async () =>
      postJson(this.url(`/videos/${encodeURIComponent(upstreamId)}/remix`), JSON.stringify({ prompt: job.prompt }), {}, await this.outbound()),
    );
    return this.accepted(response);
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    const response = await this.exchange('poll', async () => getText(this.url(`/videos/${encodeURIComponent(upstreamId)}`), await this.outbound()));
    if (!isOk(response)) throw classifyAnswer(response, 'poll');
    const parsed = openaiVideoSchema.safeParse(safeJson(response.bodyText));
    if (!parsed.success) throw new UpstreamError('unavailable', `upstream status answer has no status (HTTP ${response.status})`, response.status);
    return this.statusOf(parsed.data, upstreamId);
  }

  /** A job of this dialect as a status; a finished one's video is at its content endpoint. */
  statusOf(video: OpenAIVideo, upstreamId: string): UpstreamStatus {
    const id = capText(video.id ?? video.task_id ?? upstreamId, upstreamCaps.id);
    const phase = phaseOf(video.status);
    const message = video.error?.message || (phase === 'failed' ? `the upstream reports the job ${video.status}` : '');
    return {
      upstreamId: id,
      phase,
      state: capText(video.status, upstreamCaps.state),
      progress: phase === 'succeeded' ? 100 : clampProgress(video.progress),
      ...(phase === 'succeeded' ? this.contentUrls(id) : {}),
      message: capText(message, upstreamCaps.message),
    };
  }

  /** A finished job's video and its still images: the content endpoint and its variants (a job may lack them: the archive tries). */
  private contentUrls(id: string): Pick<UpstreamStatus, 'videoUrl' | 'thumbnailUrl' | 'spritesheetUrl'> {
    const content = this.url(`/videos/${encodeURIComponent(id)}/content`);
    return { videoUrl: content, thumbnailUrl: `${content}?variant=thumbnail`, spritesheetUrl: `${content}?variant=spritesheet` };
  }

  async parseCallback(): Promise<UpstreamStatus> {
    throw new UpstreamError('rejected', 'this upstream does not call back; its tasks are polled');
  }

  /**
   * The job an ambiguous submit may have made. The dialect has no field of ours to match
   * on, so this reads the most recent jobs (newest first, a few pages at most) and takes the
   * newest one whose model, prompt, seconds and size are the ones we sent and that was
   * created no earlier than the submit could have reached the upstream: `submittedAt`, less
   * the request's timeout and a minute of clock skew. Two tasks with the same model, prompt,
   * seconds and size submitted within that window could be taken for one another: one video
   * for two tasks, never a second generation. `null` only when the listing reached jobs
   * older than the window without a match; a listing that cannot be read, or that leaves
   * out a recent job's prompt or model (some relays do), throws.
   */
  async findJob(job: UpstreamJob, submittedAt: number): Promise<string | null> {
    const sent = new Map(this.fields(job));
    const since = Math.floor(submittedAt / 1000) - Math.ceil(this.options.timeoutMs / 1000) - clockSkewSeconds;
    let after: string | undefined;
    for (let page = 0; page < listPagesAtMost; page += 1) {
      const query = new URLSearchParams({ limit: String(listPageSize), order: 'desc', ...(after ? { after } : {}) });
      const response = await this.exchange('poll', async () => getText(this.url(`/videos?${query}`), { ...(await this.outbound()), maxResponseBytes: 1024 * 1024 }));
      if (!isOk(response)) {
        const error = classifyAnswer(response, 'poll');
        throw new UpstreamError('unavailable', `cannot list the upstream's jobs: ${error.message}`, response.status, error.code);
      }
      const parsed = openaiVideoListSchema.safeParse(safeJson(response.bodyText));
      if (!parsed.success) throw new UpstreamError('unavailable', 'cannot list the upstream’s jobs: the answer is not a list of videos', response.status);
      const { data, has_more: hasMore, last_id: lastId } = parsed.data;
      for (const video of data) {
        const id = video.id ?? video.task_id;
        if (id === undefined || (video.created_at ?? 0) < since) continue;
        const shown = (['model', 'prompt', 'seconds', 'size'] as const).map((field) => [video[field], sent.get(field)] as const);
        if (shown.some(([theirs, ours]) => theirs != null && theirs !== ours)) continue;
        if (shown.every(([theirs]) => theirs != null)) return capText(id, upstreamCaps.id);
        // A recent job the listing does not fully describe may be ours: no certainty either way.
        throw new UpstreamError('unavailable', `cannot tell whether job ${capText(id, upstreamCaps.id)} is this task's: the upstream's listing leaves out what was sent`);
      }
      const oldest = data.at(-1);
      if (!hasMore || oldest === undefined || (oldest.created_at ?? 0) < since) return null;
      after = lastId ?? oldest.id ?? oldest.task_id;
      if (after === undefined) break;
    }
    throw new UpstreamError('unavailable', `cannot list the upstream's jobs back to the submit: more than ${listPagesAtMost * listPageSize} jobs since`);
  }

  /** The client's reference image as a file part, fetched under the client URL policy. */
  private async referenceImage(url: string): Promise<FormFile> {
    const { timeoutMs } = this.options;
    try {
      const policy = this.options.imagePolicy ?? clientUrlPolicy(false);
      const { bytes, kind } = await fetchImage(url, { policy, timeoutMs, signal: AbortSignal.timeout(timeoutMs), maxBytes: maxImageBytes });
      return { name: 'input_reference', filename: `reference.${kind.ext}`, contentType: kind.contentType, bytes };
    } catch (error) {
      if (error instanceof ImageFetchError) {
        // The image host's own trouble may pass; a missing, oversized or wrong image will not.
        const passing = error.status !== undefined && (error.status >= 500 || error.status === 429);
        throw new UpstreamError(passing ? 'unavailable' : 'rejected', `image_urls[0] ${error.message}`);
      }
      const refused = error instanceof OutboundError && (error.code === 'blocked_address' || error.code === 'bad_url');
      throw new UpstreamError(refused ? 'rejected' : 'unavailable', `image_urls[0] could not be fetched: ${(error as Error).message}`);
    }
  }

  /**
   * The id of the job a 2xx made. A 2xx without a readable id still says a job was made:
   * ambiguous, so that `findJob` looks for it before another route is tried.
   */
  private accepted(response: TextResult): { upstreamId: string } {
    if (!isOk(response)) throw classifyAnswer(response, 'submit');
    const parsed = openaiVideoSchema.safeParse(safeJson(response.bodyText));
    const id = parsed.success ? (parsed.data.id ?? parsed.data.task_id) : undefined;
    if (id === undefined) throw new UpstreamError('ambiguous', 'upstream accepted the job but sent no id', response.status);
    return { upstreamId: capText(id, upstreamCaps.id) };
  }

  private url(path: string): string {
    return `${this.options.baseUrl}${path}`;
  }

  /** The key, sent the same way to the API and to the content endpoint the status names (providers/video-auth.ts). */
  private async requestHeaders(): Promise<Record<string, string>> {
    return videoAuth.openai!(await this.options.apiKey());
  }

  /** Over pooled keep-alive connections to the operator's host, with the key; `timeoutMs` bounds the whole exchange. */
  private async outbound() {
    const { timeoutMs } = this.options;
    return { policy: operatorPolicy, timeoutMs, signal: AbortSignal.timeout(timeoutMs), headers: await this.requestHeaders() };
  }

  private async exchange(during: Exchange, call: () => Promise<TextResult>): Promise<TextResult> {
    try {
      return await call();
    } catch (error) {
      throw classifyTransport(error, during, this.options.timeoutMs);
    }
  }
}
