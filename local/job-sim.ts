import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { requestedVideo, VideoShape } from './mp4';
import { HttpError, presentedKey, sendJson, startHttpServer, type HttpServer } from './sim-kit';
import { jobVideo, parseFaultTokens, sendAccepted, serveVideo, type SimFaults } from './simulated-upstream';

/**
 * The job life cycle of the simulated upstreams that call back once a job ends (fal,
 * Replicate, OpenRouter), driven by the shared fault vocabulary (`SimFaults`, the `sim:`
 * prompt tokens of `simulated-upstream.ts`). A dialect adds only its routes, its bodies and
 * its callbacks.
 *
 * A job is queued, running after a fifth of its render time (at most 2 s), and ends after
 * `renderMs`: succeeded, or failed with `sim:fail`, never with `sim:render=stall`. Its final
 * state is POSTed once to its callback URL (`sim:drop`: never, `sim:duplicate`: twice); its
 * video is served from `/files/{id}.mp4` with the video faults.
 */

export type SimPhase = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export interface SimJob {
  id: string;
  model: string;
  prompt: string;
  /** The parsed JSON body of the submit, as received. */
  body: Record<string, unknown>;
  /** The `Authorization` header of the submit, as received. */
  authorization: string | undefined;
  callbackUrl: string | undefined;
  faults: SimFaults;
  phase: SimPhase;
  message: string;
  renderMs: number;
  video: VideoShape;
  videoUrl: string;
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** Every callback this job POSTed (or tried to), in order, with its headers. */
  callbacks: { body: unknown; headers: Record<string, string> }[];
}

export interface JobSimOptions {
  host?: string;
  port?: number;
  /** When set, requests must carry it (`<scheme> <key>` or the bare key). */
  apiKey?: string;
  /** Time from submit to the end; default 3000. */
  renderMs?: number;
  faults?: SimFaults;
  /** Size of `oversized` videos when the job names no `bytes`; default 64 MiB. */
  oversizedBytes?: number;
  callbackTimeoutMs?: number;
  log?: (msg: string, fields?: object) => void;
}

export interface JobSimStats {
  submitsReceived: number;
  submitsAccepted: number;
  statusRequests: number;
  callbacksSent: number;
  callbacksFailed: number;
  cancels: number;
}

export interface JobSimDialect {
  /** `Authorization` scheme: fal's `Key`, the others' `Bearer`. */
  authScheme: string;
  idPrefix: string;
  errorBody(err: HttpError): unknown;
  /** Its API routes; `undefined` when the path is not one of them. */
  route(req: IncomingMessage, res: ServerResponse, path: URL, sim: JobSim): Promise<void> | undefined;
  /** The callback a finished job POSTs to its `callbackUrl`. */
  finalCallback(job: SimJob, sim: JobSim): { body: unknown; headers?: Record<string, string> };
  /** What a content-policy refusal of a submit looks like in this dialect. */
  rejectError?: HttpError;
}

const DEFAULT_RENDER_MS = 3000;

/** A simulated upstream of one dialect, with the shared job life cycle and faults. */
export class JobSim {
  readonly jobs = new Map<string, SimJob>();
  readonly stats: JobSimStats = { submitsReceived: 0, submitsAccepted: 0, statusRequests: 0, callbacksSent: 0, callbacksFailed: 0, cancels: 0 };
  url = '';
  private serverFaults: SimFaults;
  private readonly timers = new Set<NodeJS.Timeout>();
  private server: HttpServer | undefined;
  readonly log: (msg: string, fields?: object) => void;

  constructor(
    private readonly dialect: JobSimDialect,
    private readonly options: JobSimOptions = {},
  ) {
    this.serverFaults = { ...options.faults };
    this.log = options.log ?? (() => {});
  }

  async start(): Promise<this> {
    this.server = await startHttpServer({
      host: this.options.host,
      port: this.options.port,
      log: this.log,
      errorBody: (err) => this.dialect.errorBody(err),
      handle: async (req, res) => {
        const path = new URL(req.url ?? '/', 'http://upstream');
        const file = /^\/files\/([^/]+)\.mp4$/.exec(path.pathname);
        if (file) return this.serveFile(req, res, decodeURIComponent(file[1] ?? ''));
        const handled = this.dialect.route(req, res, path, this);
        if (handled === undefined) throw new HttpError(404, 'not_found', `no route for ${req.method} ${path.pathname}`);
        return handled;
      },
    });
    this.url = this.server.url;
    return this;
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  setFaults(faults: SimFaults): void {
    this.serverFaults = { ...faults };
  }

  checkKey(req: IncomingMessage): void {
    if (this.options.apiKey === undefined) return;
    if (presentedKey(req.headers.authorization, this.dialect.authScheme) !== this.options.apiKey)
      throw new HttpError(401, 'unauthorized', 'invalid or missing API key');
  }

  /** A submit: the key, then the faults of the prompt and the server; the new job, or `undefined` when the fault is a stall. */
  accept(req: IncomingMessage, fields: { model: string; prompt: string; body: Record<string, unknown>; callbackUrl: string | undefined; video: Parameters<typeof requestedVideo>[0] }): SimJob | undefined {
    this.stats.submitsReceived++;
    this.checkKey(req);
    const faults: SimFaults = { ...this.serverFaults, ...parseFaultTokens(fields.prompt).faults };
    switch (faults.submit) {
      case 'reject':
        throw this.dialect.rejectError ?? new HttpError(400, 'content_policy', 'prompt violates content policy');
      case '429':
        throw new HttpError(429, 'rate_limited', 'too many requests, slow down', { 'retry-after': String(faults.retryAfter ?? 1) });
      case '500':
        throw new HttpError(500, 'internal_error', 'internal server error');
      case '503':
        throw new HttpError(503, 'overloaded', 'service temporarily overloaded, try again later');
      case 'stall':
        this.log('submit stalled', { prompt: fields.prompt });
        return undefined;
    }
    const id = `${this.dialect.idPrefix}${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
    const job: SimJob = {
      id,
      model: fields.model,
      prompt: fields.prompt,
      body: fields.body,
      authorization: req.headers.authorization,
      callbackUrl: fields.callbackUrl,
      faults,
      phase: 'queued',
      message: '',
      renderMs: faults.renderMs ?? this.options.renderMs ?? DEFAULT_RENDER_MS,
      video: jobVideo(id, fields.video, faults, this.options.oversizedBytes),
      videoUrl: `${this.url}/files/${id}.mp4`,
      createdAt: Date.now(),
      startedAt: undefined,
      finishedAt: undefined,
      callbacks: [],
    };
    this.jobs.set(id, job);
    this.stats.submitsAccepted++;
    this.log('job accepted', { id, model: job.model, faults });
    this.run(job);
    return job;
  }

  /**
   * The answer to a submit that made `job`: `body` with the dialect's status, or the ambiguous
   * failure of `sim:submit=accept-drop` (connection cut) or `accept-504` (a proxy's page).
   */
  answerAccepted(res: ServerResponse, job: SimJob, status: number, body: unknown): void {
    if (job.faults.submit === 'accept-drop' || job.faults.submit === 'accept-504') sendAccepted(res, job.faults.submit, body);
    else sendJson(res, status, body);
  }

  /** A status poll of a job: the key, then the job's poll fault. */
  polled(req: IncomingMessage, id: string): SimJob {
    this.stats.statusRequests++;
    this.checkKey(req);
    const job = this.jobs.get(id);
    if (!job || job.faults.poll === '404') throw new HttpError(404, 'not_found', `${id} not found`);
    if (job.faults.poll === '500') throw new HttpError(500, 'internal_error', 'internal server error');
    return job;
  }

  /** The word to report while a job renders: its `sim:state` fault, else the dialect's own. */
  runningWord(job: SimJob, own: string): string {
    return job.faults.state ?? own;
  }

  /** Rises with time while running; a stalled render creeps towards 99 but never gets there. */
  progress(job: SimJob): number {
    if (job.phase === 'succeeded') return 100;
    if (job.phase !== 'running') return 0;
    return Math.min(99, Math.floor(((Date.now() - job.createdAt) / job.renderMs) * 100));
  }

  /** Stops a job that has not ended; true when it was stopped. */
  cancel(job: SimJob): boolean {
    this.stats.cancels++;
    if (job.phase !== 'queued' && job.phase !== 'running') return false;
    this.end(job, 'canceled', 'canceled by the client');
    return true;
  }

  private later(ms: number, fn: () => void): void {
    if (this.server?.closing.aborted) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private run(job: SimJob): void {
    this.later(Math.min(job.renderMs * 0.2, 2000), () => {
      if (job.phase !== 'queued') return;
      job.phase = 'running';
      job.startedAt = Date.now();
    });
    if (job.faults.render === 'stall') return;
    this.later(job.renderMs, () => {
      if (job.phase !== 'queued' && job.phase !== 'running') return;
      if (job.faults.render === 'fail') this.end(job, 'failed', 'simulated render failure: the video could not be generated');
      else this.end(job, 'succeeded', '');
    });
  }

  private end(job: SimJob, phase: 'succeeded' | 'failed' | 'canceled', message: string): void {
    job.startedAt ??= Date.now();
    job.phase = phase;
    job.message = message;
    job.finishedAt = Date.now();
    this.log('job finished', { id: job.id, phase, message });
    if (job.faults.callback === 'drop') return;
    void (async () => {
      await this.deliver(job);
      if (job.faults.callback === 'duplicate') await this.deliver(job);
    })();
  }

  private async deliver(job: SimJob): Promise<void> {
    const url = job.callbackUrl;
    if (!url || this.server?.closing.aborted) return;
    const { body, headers = {} } = this.dialect.finalCallback(job, this);
    job.callbacks.push({ body, headers });
    const signal = AbortSignal.any([this.server!.closing, AbortSignal.timeout(this.options.callbackTimeoutMs ?? 5000)]);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `simulated-${this.dialect.idPrefix}upstream`, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      this.stats.callbacksSent++;
      this.log('callback sent', { id: job.id, status: res.status });
    } catch (err) {
      this.stats.callbacksFailed++;
      this.log('callback failed', { id: job.id, error: (err as Error).message });
    }
  }

  private async serveFile(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const job = this.jobs.get(id);
    if (!job || job.phase !== 'succeeded') throw new HttpError(404, 'not_found', `video ${id} not found`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed`);
    await serveVideo(req, res, { id, video: job.video, mode: job.faults.video ?? 'ok' }, { log: this.log });
  }

  close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    return this.server?.close() ?? Promise.resolve();
  }
}
