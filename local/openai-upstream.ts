import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import busboy from 'busboy';
import * as z from 'zod/mini';
import type { VideoShape } from './mp4';
import { listenRemembered, openSimState } from './sim-state';
import { jobVideo, parseFaultTokens, sendAccepted, serveVideo, simFaultsSchema, videoShapeSchema, type SimFaults } from './simulated-upstream';

/**
 * A real HTTP server speaking the OpenAI Videos API on loopback (the dialect of the `openai`
 * kind: new-api / one-api style resellers), for `npm start` and tests. Its base URL is the
 * `/v1` level, as an upstream entry's `baseUrl` and the `openai` SDK's `baseURL` are.
 *
 *   POST   /v1/videos                 multipart (or JSON): prompt, model, seconds, size, input_reference
 *   GET    /v1/videos?limit&after&order   {object: "list", data, first_id, last_id, has_more}
 *   GET    /v1/videos/{id}            the video job
 *   GET    /v1/videos/{id}/content    the MP4 (local/mp4.ts), once completed; ?variant=thumbnail a
 *                                     WebP, ?variant=spritesheet a JPEG (as OpenAI serves them)
 *   POST   /v1/videos/{id}/remix      {prompt}: a new job from a completed one
 *   DELETE /v1/videos/{id}            removes a finished job
 *
 * A job is `queued`, then `in_progress` with rising progress, then `completed` (or `failed`)
 * after `renderMs`. It never calls back. Errors are `{error: {message, type, param, code}}`.
 * Faults are those of `local/simulated-upstream.ts`, by `sim:` prompt tokens or `setFaults()`:
 * submit (reject, 429, 500, 503, stall, accept-drop, accept-504), render (fail, stall, <ms>),
 * state (the word reported instead of `in_progress`), poll (500, 404), video and bytes, stills
 * (none: the variants are 404; not-image: they are served as text).
 * Callback faults have nothing to act on here. With `persistIn`, jobs and the port survive a
 * restart (see `sim-state.ts`): a job that was rendering finishes on its own clock.
 */

export type OpenAIVideoStatus = 'queued' | 'in_progress' | 'completed' | 'failed';

/** A job as the API shows it. */
export interface OpenAIVideoView {
  id: string;
  object: 'video';
  model: string;
  status: OpenAIVideoStatus | (string & {});
  progress: number;
  created_at: number;
  completed_at: number | null;
  expires_at: number | null;
  error: { code: string; message: string } | null;
  prompt: string;
  remixed_from_video_id: string | null;
  seconds: string;
  size: string;
}

export interface OpenAISimJob {
  id: string;
  status: OpenAIVideoStatus;
  model: string;
  prompt: string;
  seconds: string;
  size: string;
  /** The reference image as received: its part's filename and type, its size and sha256. */
  inputReference?: { filename: string; contentType: string; bytes: number; sha256: string };
  remixedFrom?: string;
  /** The `Authorization` header of the submit, as received. */
  authorization?: string;
  faults: SimFaults;
  renderMs: number;
  video: VideoShape;
  createdAt: number;
  finishedAt?: number;
}

const openAISimJobSchema: z.ZodMiniType<OpenAISimJob> = z.object({
  id: z.string(),
  status: z.enum(['queued', 'in_progress', 'completed', 'failed']),
  model: z.string(),
  prompt: z.string(),
  seconds: z.string(),
  size: z.string(),
  inputReference: z.optional(z.object({ filename: z.string(), contentType: z.string(), bytes: z.number(), sha256: z.string() })),
  remixedFrom: z.optional(z.string()),
  authorization: z.optional(z.string()),
  faults: simFaultsSchema,
  renderMs: z.number(),
  video: videoShapeSchema,
  createdAt: z.number(),
  finishedAt: z.optional(z.number()),
});

export interface OpenAIUpstreamStats {
  submitsReceived: number;
  submitsAccepted: number;
  submitsRefused: number;
  statusRequests: number;
  listRequests: number;
  videoDownloadsStarted: number;
  videoDownloadsCompleted: number;
}

export interface OpenAIUpstreamOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** When set, every request must carry `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Time from submit to `completed`; default 3000. */
  renderMs?: number;
  faults?: SimFaults;
  /** Size of `oversized` videos when the job names no `bytes`; default 64 MiB. */
  oversizedBytes?: number;
  /** Directory to keep jobs and the port in across restarts (the local gateway's `<DATA_DIR>/upstreams`). */
  persistIn?: string;
  log?: (msg: string, fields?: object) => void;
}

export interface OpenAIUpstream {
  /** The `/v1` base URL, e.g. `http://127.0.0.1:41234/v1`. */
  url: string;
  port: number;
  setFaults(faults: SimFaults): void;
  jobs: ReadonlyMap<string, Readonly<OpenAISimJob>>;
  stats: Readonly<OpenAIUpstreamStats>;
  /** Stops listening, destroys open and stalled connections, cancels timers. */
  close(): Promise<void>;
}

const DEFAULT_RENDER_MS = 3000;

/** A finished job's still images, as OpenAI serves its content variants: a WebP thumbnail, a JPEG spritesheet. */
export const stills = {
  thumbnail: {
    type: 'image/webp',
    bytes: Buffer.from('UklGRkoAAABXRUJQVlA4ID4AAACwAwCdASpAACQAPpFIoEwlpCMiIqgAsBIJZwDU9oAAFRpjHD4MwAD+7HDf/V2J8KEE/9CjZRJ5lR0qIgAAAA==', 'base64'),
  },
  spritesheet: {
    type: 'image/jpeg',
    bytes: Buffer.from(
      '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAg+Pkk+SVVVVVVVVWRdZGhoaGRkZGRoaGhwcHCDg4NwcHBoaHBwfHyDg4+Tj4eHg4eTk5ubm7q6srLZ2eD/////xABMAAEBAAAAAAAAAAAAAAAAAAAABQEBAQAAAAAAAAAAAAAAAAAAAAYQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAkAIADASIAAhEAAxEA/9oADAMBAAIRAxEAPwCYAnFIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA//2Q==',
      'base64',
    ),
  },
} as const;

function serveStill(res: ServerResponse, job: OpenAISimJob, variant: keyof typeof stills): void {
  if (job.faults.stills === 'none') throw new ApiError(404, 'invalid_request_error', 'variant_not_found', `Video '${job.id}' has no ${variant}.`, 'variant');
  const { type, bytes } = job.faults.stills === 'not-image' ? { type: 'text/plain', bytes: Buffer.from('not an image') } : stills[variant];
  res.writeHead(200, { 'content-type': type, 'content-length': String(bytes.length) });
  res.end(bytes);
}
const MAX_BODY_BYTES = 20 * 1024 * 1024;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, 'invalid_request_error', code, message, param);

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

interface SubmitForm {
  fields: Record<string, string>;
  file: { name: string; filename: string; contentType: string; bytes: Buffer } | undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new ApiError(413, 'invalid_request_error', 'request_too_large', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A create or remix body: multipart as the SDK sends it, or JSON. */
async function readForm(req: IncomingMessage): Promise<SubmitForm> {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'));
    } catch {
      throw invalid('We could not parse the JSON body of your request.');
    }
    if (typeof body !== 'object' || body === null) throw invalid('The body must be a JSON object.');
    const fields = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    return { fields, file: undefined };
  }
  if (!type.startsWith('multipart/form-data')) throw invalid(`Unsupported content type ${type || '(none)'}.`);
  return new Promise<SubmitForm>((resolve, reject) => {
    const form: SubmitForm = { fields: {}, file: undefined };
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: MAX_BODY_BYTES, files: 2, fields: 20 } });
    } catch (error) {
      reject(invalid(`Malformed multipart body: ${(error as Error).message}`));
      return;
    }
    const files: Promise<void>[] = [];
    parser.on('field', (name, value) => {
      form.fields[name] = value;
    });
    parser.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      files.push(
        once(stream, 'end').then(() => {
          form.file = { name, filename: info.filename ?? '', contentType: info.mimeType, bytes: Buffer.concat(chunks) };
        }),
      );
    });
    parser.on('error', (error) => reject(invalid(`Malformed multipart body: ${(error as Error).message}`)));
    parser.on('close', () => void Promise.all(files).then(() => resolve(form), reject));
    req.pipe(parser);
  });
}

function bearerKey(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  return m?.[1]?.trim();
}

export async function startOpenAIUpstream(options: OpenAIUpstreamOptions = {}): Promise<OpenAIUpstream> {
  const log = options.log ?? (() => {});
  const defaultRenderMs = options.renderMs ?? DEFAULT_RENDER_MS;
  let serverFaults: SimFaults = { ...options.faults };
  const state = options.persistIn ? openSimState({ dir: options.persistIn, name: 'openai', job: openAISimJobSchema }) : undefined;
  const jobs = new Map<string, OpenAISimJob>(state?.jobs);
  const keep = (job: OpenAISimJob) => state?.put(job.id, job);
  const stats: OpenAIUpstreamStats = {
    submitsReceived: 0,
    submitsAccepted: 0,
    submitsRefused: 0,
    statusRequests: 0,
    listRequests: 0,
    videoDownloadsStarted: 0,
    videoDownloadsCompleted: 0,
  };
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let closing = false;

  const later = (ms: number, fn: () => void): void => {
    if (closing) return;
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const view = (job: OpenAISimJob): OpenAIVideoView => {
    const running = job.status === 'in_progress';
    // Rises with time; a stalled render creeps towards 99 but never gets there.
    const progress =
      job.status === 'completed' ? 100 : running ? Math.min(99, Math.floor(((Date.now() - job.createdAt) / job.renderMs) * 100)) : 0;
    return {
      id: job.id,
      object: 'video',
      model: job.model,
      status: running ? (job.faults.state ?? 'in_progress') : job.status,
      progress,
      created_at: Math.floor(job.createdAt / 1000),
      completed_at: job.finishedAt === undefined ? null : Math.floor(job.finishedAt / 1000),
      expires_at: job.finishedAt === undefined ? null : Math.floor(job.finishedAt / 1000) + 86_400,
      error: job.status === 'failed' ? { code: 'video_generation_failed', message: 'simulated render failure: the video could not be generated' } : null,
      prompt: job.prompt,
      remixed_from_video_id: job.remixedFrom ?? null,
      seconds: job.seconds,
      size: job.size,
    };
  };

  /** The render's steps, timed from the submit: a job kept across a restart picks up where its clock is. */
  const startRender = (job: OpenAISimJob): void => {
    const at = (offset: number, fn: () => void) => later(Math.max(0, job.createdAt + offset - Date.now()), fn);
    at(Math.min(job.renderMs * 0.2, 2000), () => {
      if (job.status !== 'queued') return;
      job.status = 'in_progress';
      keep(job);
    });
    if (job.faults.render === 'stall') return;
    at(job.renderMs, () => {
      job.status = job.faults.render === 'fail' ? 'failed' : 'completed';
      job.finishedAt = Date.now();
      keep(job);
      log('job finished', { id: job.id, status: job.status });
    });
  };

  const checkKey = (req: IncomingMessage): void => {
    if (options.apiKey !== undefined && bearerKey(req.headers.authorization) !== options.apiKey)
      throw new ApiError(401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.');
  };

  /** A new job from a form, with the faults in force; answers unless a submit fault says otherwise. */
  const accept = (req: IncomingMessage, res: ServerResponse, form: SubmitForm, remixedFrom?: OpenAISimJob): void => {
    const { fields, file } = form;
    const prompt = fields.prompt ?? '';
    if (prompt.trim() === '') throw invalid("Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter');
    const seconds = fields.seconds ?? remixedFrom?.seconds ?? '4';
    if (!/^\d{1,3}$/.test(seconds)) throw invalid(`Invalid value: '${seconds}'. seconds must be a whole number of seconds.`, 'seconds', 'invalid_value');
    const size = fields.size ?? remixedFrom?.size ?? '720x1280';
    if (!/^\d{2,5}x\d{2,5}$/.test(size)) throw invalid(`Invalid value: '${size}'. size must be WIDTHxHEIGHT.`, 'size', 'invalid_value');
    if (fields['input_reference'] !== undefined && file === undefined)
      throw invalid("Invalid type for 'input_reference': expected a file, but got a string instead.", 'input_reference', 'invalid_type');
    if (file && (file.name !== 'input_reference' || !file.contentType.startsWith('image/')))
      throw invalid(`Invalid file '${file.name}': expected an image as input_reference.`, 'input_reference', 'invalid_value');

    const tokens = parseFaultTokens(prompt);
    if (tokens.unknown.length > 0) log('unknown sim tokens ignored', { tokens: tokens.unknown });
    const faults: SimFaults = { ...serverFaults, ...tokens.faults };
    switch (faults.submit) {
      case 'reject':
        throw new ApiError(400, 'invalid_request_error', 'moderation_blocked', 'Your request was blocked by our moderation system.');
      case '429':
        throw new ApiError(429, 'requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again later.', null, {
          'retry-after': String(faults.retryAfter ?? 1),
        });
      case '500':
        throw new ApiError(500, 'server_error', 'server_error', 'The server had an error while processing your request.');
      case '503':
        throw new ApiError(503, 'server_error', 'overloaded', 'The engine is currently overloaded, please try again later.');
      case 'stall':
        log('submit stalled', { prompt });
        return; // never answered; close() or the client ends it
    }

    const id = `video_${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
    const job: OpenAISimJob = {
      id,
      status: 'queued',
      model: fields.model ?? remixedFrom?.model ?? 'sora-2',
      prompt,
      seconds,
      size,
      inputReference: file && {
        filename: file.filename,
        contentType: file.contentType,
        bytes: file.bytes.length,
        sha256: createHash('sha256').update(file.bytes).digest('hex'),
      },
      remixedFrom: remixedFrom?.id,
      authorization: req.headers.authorization,
      faults,
      renderMs: faults.renderMs ?? defaultRenderMs,
      video: jobVideo(id, { seconds, size }, faults, options.oversizedBytes),
      createdAt: Date.now(),
      finishedAt: undefined,
    };
    jobs.set(id, job);
    keep(job);
    stats.submitsAccepted++;
    log('job accepted', { id, model: job.model, faults });
    sendAccepted(res, faults.submit, view(job));
    startRender(job);
  };

  const jobOf = (id: string): OpenAISimJob => {
    const job = jobs.get(id);
    if (!job) throw new ApiError(404, 'invalid_request_error', 'video_not_found', `Video with id '${id}' not found.`, 'video_id');
    return job;
  };

  const list = (res: ServerResponse, query: URLSearchParams): void => {
    stats.listRequests++;
    const limit = Math.max(1, Math.min(100, Number(query.get('limit') ?? 20) || 20));
    const all = [...jobs.values()];
    if (query.get('order') !== 'asc') all.reverse();
    const after = query.get('after');
    const start = after ? all.findIndex((j) => j.id === after) + 1 : 0;
    if (after && start === 0) throw invalid(`No video found with id '${after}'.`, 'after');
    const page = all.slice(start, start + limit).map(view);
    sendJson(res, 200, {
      object: 'list',
      data: page,
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: start + limit < all.length,
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '');
    checkKey(req);
    if (path === '/v1/videos') {
      if (method === 'GET') return list(res, url.searchParams);
      if (method !== 'POST') throw new ApiError(405, 'invalid_request_error', null, `${method} not allowed`);
      stats.submitsReceived++;
      try {
        accept(req, res, await readForm(req));
      } catch (error) {
        stats.submitsRefused++;
        throw error;
      }
      return;
    }
    const m = /^\/v1\/videos\/([^/]+)(?:\/(content|remix))?$/.exec(path);
    if (!m) throw new ApiError(404, 'invalid_request_error', null, `Invalid URL (${method} ${path})`);
    const id = decodeURIComponent(m[1] ?? '');
    const action = m[2];
    if (action === undefined && method === 'GET') {
      stats.statusRequests++;
      const job = jobOf(id);
      if (job.faults.poll === '404') throw new ApiError(404, 'invalid_request_error', 'video_not_found', `Video with id '${id}' not found.`, 'video_id');
      if (job.faults.poll === '500') throw new ApiError(500, 'server_error', 'server_error', 'The server had an error while processing your request.');
      return sendJson(res, 200, view(job));
    }
    if (action === undefined && method === 'DELETE') {
      const job = jobOf(id);
      if (job.status === 'queued' || job.status === 'in_progress') throw invalid('Only completed or failed videos can be deleted.', 'video_id');
      jobs.delete(id);
      return sendJson(res, 200, { id, object: 'video.deleted', deleted: true });
    }
    if (action === 'content' && (method === 'GET' || method === 'HEAD')) {
      const job = jobOf(id);
      const variant = url.searchParams.get('variant') ?? 'video';
      if (variant !== 'video' && !Object.hasOwn(stills, variant)) throw invalid(`Variant '${variant}' is not available for this video.`, 'variant');
      if (job.status !== 'completed') throw new ApiError(404, 'invalid_request_error', 'video_not_ready', `Video '${id}' is not ready: it is ${job.status}.`);
      if (job.faults.video === 'gone') throw new ApiError(404, 'invalid_request_error', 'video_expired', `The assets of video '${id}' have expired.`);
      if (variant !== 'video') return serveStill(res, job, variant as keyof typeof stills);
      return serveVideo(req, res, { id, video: job.video, mode: job.faults.video ?? 'ok' }, {
        log,
        started: () => stats.videoDownloadsStarted++,
        completed: () => stats.videoDownloadsCompleted++,
      });
    }
    if (action === 'remix' && method === 'POST') {
      stats.submitsReceived++;
      try {
        const source = jobOf(id);
        if (source.status !== 'completed') throw invalid(`Video '${id}' cannot be remixed: it is ${source.status}.`, 'video_id');
        accept(req, res, await readForm(req), source);
      } catch (error) {
        stats.submitsRefused++;
        throw error;
      }
      return;
    }
    throw new ApiError(405, 'invalid_request_error', null, `${method} not allowed on ${path}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const error = err instanceof ApiError ? err : new ApiError(500, 'server_error', 'server_error', 'The server had an error while processing your request.');
      if (!(err instanceof ApiError)) log('request failed', { url: req.url, error: (err as Error).message });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Drain what the client is still sending, so it reads the answer instead of a reset.
      req.resume();
      sendJson(res, error.status, { error: { message: error.message, type: error.type, param: error.param, code: error.code } }, error.headers);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const listenHost = options.host ?? '127.0.0.1';
  const port = await listenRemembered(server, listenHost, state, options.port, log);
  const host = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  const url = `http://${host}:${port}/v1`;
  log('openai upstream listening', { url, keptJobs: state?.jobs.size ?? 0 });
  // Poll-only: nothing to send again, only renders to pick up.
  for (const job of jobs.values()) if (job.status === 'queued' || job.status === 'in_progress') startRender(job);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      state?.close();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closed;
  };

  return {
    url,
    port,
    setFaults(faults: SimFaults) {
      serverFaults = { ...faults };
    },
    jobs,
    stats,
    close,
  };
}
