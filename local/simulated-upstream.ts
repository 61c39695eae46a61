import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as z from 'zod/mini';
import { minimumVideoBytes, requestedVideo, videoStream, type GrownVideo, type VideoShape } from './mp4';
import { listenRemembered, openSimState, type SimState } from './sim-state';

/**
 * A real HTTP server speaking the `duomi` dialect on loopback, for `npm start` and tests.
 *
 *   POST /v1/videos/generations   -> 200 {"id"}
 *   POST /v1/videos/{id}/remix    -> 200 {"id"}: a new job from a succeeded one (same body; its
 *                                    duration and ratio when the body leaves them out)
 *   GET  /v1/videos/tasks/{id}    -> {id, state, progress, data: {videos: [{url}]}, message}
 *   GET  /files/{id}.mp4          -> the rendered video (a real MP4, grown to the task's size)
 *
 * A task is `pending`, then `running` with rising progress (one progress callback half-way),
 * then `succeeded` after `renderMs`, and the final status is POSTed to its `callback_url`.
 *
 * Faults are chosen per task by tokens in the prompt, `sim:<name>` or `sim:<name>=<value>`
 * ("a cat sim:video=truncated sim:bytes=5M"), or server-wide with `faults` / `setFaults()`;
 * a prompt token wins over the server-wide setting, and `=ok` turns a server-wide fault off.
 *
 *   sim:submit=reject|429|500|503|stall|ok   (shortcuts sim:reject, sim:429[=<retry-after s>], sim:500, sim:503)
 *   sim:submit=accept-drop|accept-504       the job is made, then the connection drops before the answer
 *                                           (accept-drop) or a proxy's 504 comes back (accept-504):
 *                                           the ambiguous answers, after which the job does exist
 *   sim:retry-after=<s>                     Retry-After of a 429 (default 1)
 *   sim:render=fail|stall|ok|<ms>           (shortcut sim:fail); <ms> sets this task's render time
 *   sim:callback=drop|duplicate|ok          (shortcuts sim:drop, sim:duplicate)
 *   sim:video=truncated|not-video|oversized|chunked|gone|stall|no-moov|ok
 *                                           (no-moov: a whole file whose movie header is blanked out)
 *                                           (shortcuts sim:truncated, sim:not-video, sim:oversized)
 *   sim:bytes=<n>[K|M|G]                    video size (binary units); default the smallest
 *   sim:seconds=<n>                         the video lasts n seconds, whatever the duration asked
 *   sim:rate=<n>[K|M|G]                     the video is sent at n bytes per second
 *   sim:state=weird|<word>                  while rendering, report an unknown state word
 *                                           (weird -> "queued_for_gpu") instead of "running"
 *   sim:poll=500|404|ok                     status polls of this task fail
 *   sim:stills=none|not-image|ok            (dialects with a thumbnail and spritesheet) they are
 *                                           missing, or served as bytes that are no image
 *
 * With `persistIn`, jobs and the port survive a restart (see `sim-state.ts`): a task that was
 * rendering finishes on time, and a final callback that was never answered 2xx is sent again.
 */

export type SubmitFault = 'ok' | 'reject' | '429' | '500' | '503' | 'stall' | 'accept-drop' | 'accept-504';
export type RenderFault = 'ok' | 'fail' | 'stall';
export type CallbackFault = 'ok' | 'drop' | 'duplicate';
export type VideoFault = 'ok' | 'truncated' | 'not-video' | 'oversized' | 'chunked' | 'gone' | 'stall' | 'no-moov';
export type PollFault = 'ok' | '500' | '404';
export type StillsFault = 'ok' | 'none' | 'not-image';

export interface SimFaults {
  submit?: SubmitFault;
  /** Seconds sent in `Retry-After` with a 429. */
  retryAfter?: number;
  render?: RenderFault;
  renderMs?: number;
  callback?: CallbackFault;
  video?: VideoFault;
  /** Video size in bytes. */
  bytes?: number;
  /** Video length in seconds, instead of the one asked for. */
  seconds?: number;
  /** Bytes per second the video is sent at; unset, as fast as the reader takes it. */
  rate?: number;
  /** State word reported while rendering instead of `running`. */
  state?: string;
  poll?: PollFault;
  /** The still images (thumbnail, spritesheet) of dialects that serve them: missing, or bytes that are no image. */
  stills?: StillsFault;
}

export type DuomiState = 'pending' | 'running' | 'succeeded' | 'error';

/** The status answer and callback body of the `duomi` dialect. */
export interface DuomiTaskView {
  id: string;
  state: DuomiState | (string & {});
  progress: number;
  data: { videos: { url: string }[] };
  message: string;
}

export interface SimTaskRecord {
  id: string;
  state: DuomiState;
  progress: number;
  message: string;
  model: string;
  prompt: string;
  callback_url?: string;
  /** The parsed JSON body of the submit, as received. */
  body: Record<string, unknown>;
  /** The `Authorization` header of the submit, as received. */
  authorization?: string;
  /** The faults in force for this task (server-wide merged with prompt tokens). */
  faults: SimFaults;
  renderMs: number;
  video: VideoShape;
  videoUrl: string;
  createdAt: number;
  finishedAt?: number;
  /** Every callback body this task POSTed (or tried to), in order. */
  callbacks: DuomiTaskView[];
  /** The final callback was answered with a 2xx. */
  finalCallbackDelivered?: boolean;
  /** A remix: the job it was made from. */
  remixedFrom?: string;
}

export const videoShapeSchema = z.object({ seconds: z.number(), width: z.number(), height: z.number(), bytes: z.number() });

/** The faults a job was accepted with, as every simulator keeps them across a restart. */
export const simFaultsSchema: z.ZodMiniType<SimFaults> = z.object({
  submit: z.optional(z.enum(['ok', 'reject', '429', '500', '503', 'stall', 'accept-drop', 'accept-504'])),
  retryAfter: z.optional(z.number()),
  render: z.optional(z.enum(['ok', 'fail', 'stall'])),
  renderMs: z.optional(z.number()),
  callback: z.optional(z.enum(['ok', 'drop', 'duplicate'])),
  video: z.optional(z.enum(['ok', 'truncated', 'not-video', 'oversized', 'chunked', 'gone', 'stall', 'no-moov'])),
  bytes: z.optional(z.number()),
  seconds: z.optional(z.number()),
  rate: z.optional(z.number()),
  state: z.optional(z.string()),
  poll: z.optional(z.enum(['ok', '500', '404'])),
  stills: z.optional(z.enum(['ok', 'none', 'not-image'])),
});

const taskViewSchema = z.object({
  id: z.string(),
  state: z.string(),
  progress: z.number(),
  data: z.object({ videos: z.array(z.object({ url: z.string() })) }),
  message: z.string(),
});

/** A job as the simulator keeps it across restarts. */
export const simTaskRecordSchema: z.ZodMiniType<SimTaskRecord> = z.object({
  id: z.string(),
  state: z.enum(['pending', 'running', 'succeeded', 'error']),
  progress: z.number(),
  message: z.string(),
  model: z.string(),
  prompt: z.string(),
  callback_url: z.optional(z.string()),
  remixedFrom: z.optional(z.string()),
  body: z.record(z.string(), z.unknown()),
  authorization: z.optional(z.string()),
  faults: simFaultsSchema,
  renderMs: z.number(),
  video: videoShapeSchema,
  videoUrl: z.string(),
  createdAt: z.number(),
  finishedAt: z.optional(z.number()),
  callbacks: z.array(taskViewSchema),
  finalCallbackDelivered: z.optional(z.boolean()),
});

export interface SimStats {
  submitsReceived: number;
  submitsAccepted: number;
  submitsRefused: number;
  statusRequests: number;
  callbacksSent: number;
  callbacksFailed: number;
  videoDownloadsStarted: number;
  videoDownloadsCompleted: number;
}

export interface SimulatedUpstreamOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** When set, submits and polls must carry it as `Authorization: <key>` or `Bearer <key>`. */
  apiKey?: string;
  /** Time from submit to `succeeded`; default 3000. */
  renderMs?: number;
  faults?: SimFaults;
  /** Share (0..1) of submits answered 503, for load tests. */
  failSubmitRate?: number;
  /** Share (0..1) of tasks whose callbacks are dropped. */
  dropCallbackRate?: number;
  /** Share (0..1) of tasks whose render fails. */
  failRenderRate?: number;
  /** Seed of the PRNG behind the rates; default 1, so runs repeat. */
  seed?: number;
  /** Size of `oversized` videos when the task names no `bytes`; default 64 MiB. */
  oversizedBytes?: number;
  callbackTimeoutMs?: number;
  /** Directory to keep jobs and the port in across restarts (`<DATA_DIR>/upstreams` under npm start). */
  persistIn?: string;
  /**
   * Kept jobs resume (timers re-armed, unanswered final callbacks sent again) once this
   * settles: the gateway passes a promise that settles when it can take callbacks.
   */
  resumeWhen?: Promise<unknown>;
  log?: (msg: string, fields?: object) => void;
}

export interface SimulatedUpstream {
  /** Base URL, e.g. `http://127.0.0.1:41234`, with no trailing slash. */
  url: string;
  port: number;
  /** Replaces the server-wide faults (`{}` clears them). */
  setFaults(faults: SimFaults): void;
  tasks: ReadonlyMap<string, Readonly<SimTaskRecord>>;
  stats: Readonly<SimStats>;
  /** Stops listening, destroys open and stalled connections, cancels timers and callbacks. */
  close(): Promise<void>;
}

const DEFAULT_RENDER_MS = 3000;
const DEFAULT_OVERSIZED_BYTES = 64 * 1024 * 1024;

/**
 * A new job's video, as every simulator plans it: the duration and picture its submit asked
 * for, at the size its `bytes=` fault names, or large for `oversized`, or the smallest.
 */
export function jobVideo(
  id: string,
  asked: Parameters<typeof requestedVideo>[0],
  faults: SimFaults,
  oversizedBytes = DEFAULT_OVERSIZED_BYTES,
): VideoShape {
  const shape = requestedVideo({ ...asked, ...(faults.seconds !== undefined ? { seconds: faults.seconds } : {}) });
  const minimum = minimumVideoBytes({ taskId: id, ...shape });
  const bytes = faults.bytes ?? (faults.video === 'oversized' ? oversizedBytes : minimum);
  return { ...shape, bytes: Math.max(minimum, bytes) };
}
const DEFAULT_CALLBACK_TIMEOUT_MS = 5000;
const MAX_BODY_BYTES = 1024 * 1024;
const WEIRD_STATE = 'queued_for_gpu';

const SUBMIT_FAULTS: readonly SubmitFault[] = ['ok', 'reject', '429', '500', '503', 'stall', 'accept-drop', 'accept-504'];
const RENDER_FAULTS: readonly RenderFault[] = ['ok', 'fail', 'stall'];
const CALLBACK_FAULTS: readonly CallbackFault[] = ['ok', 'drop', 'duplicate'];
const VIDEO_FAULTS: readonly VideoFault[] = ['ok', 'truncated', 'not-video', 'oversized', 'chunked', 'gone', 'stall', 'no-moov'];
const POLL_FAULTS: readonly PollFault[] = ['ok', '500', '404'];
const STILLS_FAULTS: readonly StillsFault[] = ['ok', 'none', 'not-image'];

function oneOf<T extends string>(allowed: readonly T[], value: string | undefined): T | undefined {
  return allowed.find((a) => a === value);
}

function parseBytes(value: string | undefined): number | undefined {
  const m = /^(\d+)([kmg])?(?:i?b)?$/i.exec(value ?? '');
  if (!m) return undefined;
  const unit = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

function parseCount(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** Reads `sim:<name>[=<value>]` tokens; unknown names and values go to `unknown`. */
export function parseFaultTokens(prompt: string): { faults: SimFaults; unknown: string[] } {
  const faults: SimFaults = {};
  const unknown: string[] = [];
  for (const m of prompt.matchAll(/(?:^|\s)sim:([a-z0-9-]+)(?:=(\S+))?/gi)) {
    const name = (m[1] ?? '').toLowerCase();
    const value = m[2];
    let known = true;
    switch (name) {
      case 'submit': {
        const f = oneOf(SUBMIT_FAULTS, value);
        if (f) faults.submit = f;
        else known = false;
        break;
      }
      case 'reject':
      case '500':
      case '503':
        faults.submit = name;
        break;
      case '429':
        faults.submit = '429';
        if (value !== undefined) faults.retryAfter = parseCount(value) ?? faults.retryAfter;
        break;
      case 'retry-after': {
        const s = parseCount(value);
        if (s !== undefined) faults.retryAfter = s;
        else known = false;
        break;
      }
      case 'render': {
        const f = oneOf(RENDER_FAULTS, value);
        const ms = parseCount(value);
        if (f) faults.render = f;
        else if (ms !== undefined) faults.renderMs = ms;
        else known = false;
        break;
      }
      case 'fail':
        faults.render = 'fail';
        break;
      case 'callback': {
        const f = oneOf(CALLBACK_FAULTS, value);
        if (f) faults.callback = f;
        else known = false;
        break;
      }
      case 'drop':
      case 'duplicate':
        faults.callback = name;
        break;
      case 'seconds': {
        const n = value !== undefined && /^\d+(\.\d+)?$/.test(value) ? Number(value) : 0;
        if (n > 0 && n <= 3600) faults.seconds = n;
        else known = false;
        break;
      }
      case 'video': {
        const f = oneOf(VIDEO_FAULTS, value);
        if (f) faults.video = f;
        else known = false;
        break;
      }
      case 'truncated':
      case 'not-video':
      case 'oversized':
        faults.video = name;
        break;
      case 'bytes': {
        const n = parseBytes(value);
        if (n !== undefined) faults.bytes = n;
        else known = false;
        break;
      }
      case 'rate': {
        const n = parseBytes(value);
        if (n) faults.rate = n;
        else known = false;
        break;
      }
      case 'state':
        if (value) faults.state = value === 'weird' ? WEIRD_STATE : value;
        else known = false;
        break;
      case 'poll': {
        const f = oneOf(POLL_FAULTS, value);
        if (f) faults.poll = f;
        else known = false;
        break;
      }
      case 'stills': {
        const f = oneOf(STILLS_FAULTS, value);
        if (f) faults.stills = f;
        else known = false;
        break;
      }
      default:
        known = false;
    }
    if (!known) unknown.push(m[0].trim());
  }
  return { faults, unknown };
}

/** mulberry32: small, fast and good enough to pick which requests fail in a load test. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { message: err.message, code: err.code } }, err.headers);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new HttpError(413, 'body_too_large', 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}

function bearerKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return (m?.[1] ?? header).trim();
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

/** Passes bytes on at `bytesPerSecond`, in slices of a tenth of a second, until `res` closes. */
function throttle(bytesPerSecond: number, res: ServerResponse): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  return new Transform({
    async transform(chunk: Buffer, _encoding, done) {
      for (let offset = 0; offset < chunk.length; offset += slice) {
        if (res.destroyed) return done(new Error('the client went away'));
        this.push(chunk.subarray(offset, offset + slice));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      done();
    },
  });
}

const NOT_VIDEO_PAGE =
  '<!doctype html><html><head><title>Link expired</title></head>' +
  '<body><h1>This link has expired</h1><p>Please sign in to download your video.</p></body></html>\n';

const PROXY_TIMEOUT_PAGE =
  '<html><head><title>504 Gateway Time-out</title></head>' +
  '<body><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>\n';

/**
 * The answer to a submit whose job was made: the job's JSON, or in its place the ambiguous
 * failure a fault asks for (the connection cut, or a proxy's 504 page).
 */
export function sendAccepted(res: ServerResponse, submit: SubmitFault | undefined, body: unknown): void {
  if (submit === 'accept-drop') {
    res.socket?.destroy();
    return;
  }
  if (submit === 'accept-504') {
    res.writeHead(504, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(PROXY_TIMEOUT_PAGE) });
    res.end(PROXY_TIMEOUT_PAGE);
    return;
  }
  sendJson(res, 200, body);
}

async function sendTruncated(res: ServerResponse, video: GrownVideo): Promise<void> {
  res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size });
  const half = Math.max(1, Math.floor(video.size / 2));
  for await (const chunk of video.stream({ start: 0, end: half - 1 }) as AsyncIterable<Buffer>) {
    if (!res.write(chunk)) await once(res, 'drain');
  }
  // Wait until the bytes reach the socket, then cut the connection short of Content-Length.
  await new Promise<void>((resolve) => res.write('', () => resolve()));
  res.socket?.destroy();
}

/**
 * A finished job's video as every simulator serves it (`local/mp4.ts` bytes, grown to the
 * job's size), with the `sim:video=` fault of that job: HEAD, ranges, chunked, truncated,
 * an HTML page instead of a video, or a stall part-way.
 */
export async function serveVideo(
  req: IncomingMessage,
  res: ServerResponse,
  job: { id: string; video: VideoShape; mode: VideoFault; /** `sim:rate=`: bytes per second. */ rate?: number },
  hooks: { log: (msg: string, fields?: object) => void; started?: () => void; completed?: () => void },
): Promise<void> {
  const { id, mode } = job;
  const log = hooks.log;
  if (mode === 'not-video') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(NOT_VIDEO_PAGE) });
    res.end(NOT_VIDEO_PAGE);
    return;
  }
  const video = videoStream({ taskId: id, ...job.video });
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size, 'accept-ranges': 'bytes' });
    res.end();
    return;
  }
  hooks.started?.();
  log('video download started', { id, bytes: video.size, mode });
  if (mode === 'truncated') {
    await sendTruncated(res, video);
    return;
  }
  if (mode === 'no-moov') {
    // Every byte arrives, but the movie box is renamed `free`: an MP4 with nothing to play.
    const bytes = video.slice(0, video.size - 1);
    const moov = bytes.indexOf('moov', 0, 'latin1');
    if (moov >= 4) bytes.write('free', moov, 'latin1');
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size });
    res.end(bytes);
    return;
  }
  if (mode === 'stall') {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size });
    // At most 64 KiB and always short of the declared length (slice's end is inclusive).
    res.write(video.slice(0, Math.min(video.size - 1, 64 * 1024) - 1));
    return; // the rest never comes
  }
  let source;
  if (mode === 'chunked') {
    res.writeHead(200, { 'content-type': 'video/mp4' });
    source = video.stream();
  } else {
    const range = parseRange(req.headers.range, video.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${video.size}` });
      res.end();
      return;
    }
    if (range) {
      res.writeHead(206, {
        'content-type': 'video/mp4',
        'content-length': range.end - range.start + 1,
        'content-range': `bytes ${range.start}-${range.end}/${video.size}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size, 'accept-ranges': 'bytes' });
    }
    source = video.stream(range);
  }
  try {
    await (job.rate ? pipeline(source, throttle(job.rate, res), res) : pipeline(source, res));
    hooks.completed?.();
    log('video download completed', { id, bytes: video.size });
  } catch (err) {
    log('video download aborted', { id, error: (err as Error).message });
  }
}

export async function startSimulatedUpstream(options: SimulatedUpstreamOptions = {}): Promise<SimulatedUpstream> {
  const log = options.log ?? (() => {});
  const defaultRenderMs = options.renderMs ?? DEFAULT_RENDER_MS;
  const callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
  const random = seededRandom(options.seed ?? 1);
  let serverFaults: SimFaults = { ...options.faults };
  const state: SimState<SimTaskRecord> | undefined = options.persistIn
    ? openSimState({ dir: options.persistIn, name: 'duomi', job: simTaskRecordSchema })
    : undefined;
  const tasks = new Map<string, SimTaskRecord>(state?.jobs);
  const keep = (task: SimTaskRecord) => state?.put(task.id, task);
  const stats: SimStats = {
    submitsReceived: 0,
    submitsAccepted: 0,
    submitsRefused: 0,
    statusRequests: 0,
    callbacksSent: 0,
    callbacksFailed: 0,
    videoDownloadsStarted: 0,
    videoDownloadsCompleted: 0,
  };
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  let baseUrl = '';

  const later = (ms: number, fn: () => void): void => {
    if (closing.signal.aborted) return;
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const runningState = (task: SimTaskRecord): string => task.faults.state ?? 'running';

  const view = (task: SimTaskRecord): DuomiTaskView => {
    let progress = task.progress;
    if (task.state === 'running') {
      // Rises with time; a stalled render creeps towards 99 but never gets there.
      progress = Math.max(progress, Math.min(99, Math.floor(((Date.now() - task.createdAt) / task.renderMs) * 100)));
    }
    return {
      id: task.id,
      state: task.state === 'running' ? runningState(task) : task.state,
      progress,
      data: { videos: task.state === 'succeeded' ? [{ url: task.videoUrl }] : [] },
      message: task.message,
    };
  };

  const postCallback = async (task: SimTaskRecord, body: DuomiTaskView): Promise<void> => {
    const url = task.callback_url;
    if (!url || closing.signal.aborted) return;
    task.callbacks.push(body);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'simulated-upstream' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(callbackTimeoutMs)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      stats.callbacksSent++;
      if (res.ok && (body.state === 'succeeded' || body.state === 'error') && !task.finalCallbackDelivered) {
        task.finalCallbackDelivered = true;
        keep(task);
      }
      log('callback sent', { id: task.id, state: body.state, status: res.status });
    } catch (err) {
      stats.callbacksFailed++;
      log('callback failed', { id: task.id, state: body.state, error: (err as Error).message });
    }
  };

  const finish = async (task: SimTaskRecord, state: 'succeeded' | 'error', message: string): Promise<void> => {
    const before = view(task);
    task.state = state;
    task.message = message;
    task.finishedAt = Date.now();
    if (state === 'succeeded') task.progress = 100;
    else task.progress = before.progress;
    keep(task);
    log('task finished', { id: task.id, state, message });
    if (task.faults.callback === 'drop') return;
    const final = view(task);
    await postCallback(task, final);
    if (task.faults.callback === 'duplicate') {
      await postCallback(task, final);
      // A stale progress report arriving after the final one, as a late retry would.
      await postCallback(task, { ...before, state: runningState(task), progress: Math.min(before.progress, 50) });
    }
  };

  /** The render's steps, timed from the submit: a job kept across a restart picks up where its clock is. */
  const startRender = (task: SimTaskRecord): void => {
    const ms = task.renderMs;
    const at = (offset: number, fn: () => void) => later(Math.max(0, task.createdAt + offset - Date.now()), fn);
    at(Math.min(ms * 0.2, 2000), () => {
      if (task.state === 'pending') task.state = 'running';
    });
    at(ms / 2, () => {
      if (task.state === 'pending') task.state = 'running';
      if (task.state !== 'running' || task.progress >= 50) return;
      task.progress = 50;
      keep(task);
      if (task.faults.callback !== 'drop') void postCallback(task, view(task));
    });
    if (task.faults.render === 'stall') return;
    at(ms, () => {
      if (task.faults.render === 'fail') void finish(task, 'error', 'simulated render failure: the video could not be generated');
      else void finish(task, 'succeeded', '');
    });
  };

  const checkKey = (req: IncomingMessage): void => {
    if (options.apiKey === undefined) return;
    if (bearerKey(req.headers.authorization) !== options.apiKey) {
      throw new HttpError(401, 'unauthorized', 'invalid or missing API key');
    }
  };

  /** A submit, or (`source`) a remix of a finished job. */
  const handleSubmit = async (req: IncomingMessage, res: ServerResponse, source?: string): Promise<void> => {
    stats.submitsReceived++;
    checkKey(req);
    const original = source === undefined ? undefined : tasks.get(source);
    if (source !== undefined && !original) throw new HttpError(404, 'not_found', `task ${source} not found`);
    if (original && original.state !== 'succeeded')
      throw new HttpError(400, 'invalid_request', `task ${original.id} cannot be remixed: it is ${original.state}`);
    const body = await readJson(req);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'invalid_request', 'request body must be a JSON object');
    }
    const fields = body as Record<string, unknown>;
    const { model, prompt, callback_url: callbackUrl } = fields;
    if (typeof model !== 'string' || model.trim() === '') throw new HttpError(400, 'invalid_request', 'model is required');
    if (typeof prompt !== 'string' || prompt.trim() === '') throw new HttpError(400, 'invalid_request', 'prompt is required');
    if (callbackUrl !== undefined && typeof callbackUrl !== 'string') {
      throw new HttpError(400, 'invalid_request', 'callback_url must be a string');
    }

    const tokens = parseFaultTokens(prompt);
    if (tokens.unknown.length > 0) log('unknown sim tokens ignored', { tokens: tokens.unknown });
    const faults: SimFaults = { ...serverFaults, ...tokens.faults };
    if (faults.submit === undefined && options.failSubmitRate && random() < options.failSubmitRate) faults.submit = '503';

    switch (faults.submit) {
      case 'reject':
        throw new HttpError(400, 'content_policy', 'prompt violates content policy');
      case '429':
        throw new HttpError(429, 'rate_limited', 'too many requests, slow down', {
          'retry-after': String(faults.retryAfter ?? 1),
        });
      case '500':
        throw new HttpError(500, 'internal_error', 'internal server error');
      case '503':
        throw new HttpError(503, 'overloaded', 'service temporarily overloaded, try again later');
      case 'stall':
        log('submit stalled', { prompt });
        return; // never answered; close() or the client ends it
    }

    if (faults.callback === undefined && options.dropCallbackRate && random() < options.dropCallbackRate) faults.callback = 'drop';
    if (faults.render === undefined && options.failRenderRate && random() < options.failRenderRate) faults.render = 'fail';

    const id = `sim_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
    const task: SimTaskRecord = {
      id,
      state: 'pending',
      progress: 0,
      message: '',
      model,
      prompt,
      ...(callbackUrl !== undefined ? { callback_url: callbackUrl } : {}),
      body: fields,
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      faults,
      renderMs: faults.renderMs ?? defaultRenderMs,
      video: jobVideo(
        id,
        { seconds: fields.duration ?? original?.body.duration, aspectRatio: fields.aspect_ratio ?? original?.body.aspect_ratio },
        faults,
        options.oversizedBytes,
      ),
      videoUrl: `${baseUrl}/files/${id}.mp4`,
      createdAt: Date.now(),
      callbacks: [],
      ...(original ? { remixedFrom: original.id } : {}),
    };
    tasks.set(id, task);
    keep(task);
    stats.submitsAccepted++;
    log(original ? 'remix accepted' : 'task accepted', { id, model, faults, ...(original ? { remixedFrom: original.id } : {}) });
    sendAccepted(res, faults.submit, { id });
    startRender(task);
  };

  const handleStatus = (req: IncomingMessage, res: ServerResponse, id: string): void => {
    stats.statusRequests++;
    checkKey(req);
    const task = tasks.get(id);
    if (!task || task.faults.poll === '404') throw new HttpError(404, 'not_found', `task ${id} not found`);
    if (task.faults.poll === '500') throw new HttpError(500, 'internal_error', 'internal server error');
    sendJson(res, 200, view(task));
  };

  const handleVideo = async (req: IncomingMessage, res: ServerResponse, id: string): Promise<void> => {
    const task = tasks.get(id);
    if (!task || task.state !== 'succeeded' || task.faults.video === 'gone') {
      throw new HttpError(404, 'not_found', `video ${id} not found`);
    }
    await serveVideo(req, res, { id, video: task.video, mode: task.faults.video ?? 'ok', rate: task.faults.rate }, {
      log,
      started: () => stats.videoDownloadsStarted++,
      completed: () => stats.videoDownloadsCompleted++,
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://upstream').pathname;
    const method = req.method ?? 'GET';
    const remix = /^\/v1\/videos\/([^/]+)\/remix$/.exec(path);
    if (path === '/v1/videos/generations' || remix) {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${method} not allowed`);
      return handleSubmit(req, res, remix ? decodeURIComponent(remix[1] ?? '') : undefined).catch((err: unknown) => {
        stats.submitsRefused++;
        throw err;
      });
    }
    const status = /^\/v1\/videos\/tasks\/([^/]+)$/.exec(path);
    if (status) {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', `${method} not allowed`);
      return handleStatus(req, res, decodeURIComponent(status[1] ?? ''));
    }
    const file = /^\/files\/([^/]+)\.mp4$/.exec(path);
    if (file) {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${method} not allowed`);
      return handleVideo(req, res, decodeURIComponent(file[1] ?? ''));
    }
    throw new HttpError(404, 'not_found', `no route for ${method} ${path}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const httpError = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'internal server error');
      if (!(err instanceof HttpError)) log('request failed', { url: req.url, error: (err as Error).message });
      if (res.headersSent) res.destroy();
      else sendError(res, httpError);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const listenHost = options.host ?? '127.0.0.1';
  const port = await listenRemembered(server, listenHost, state, options.port, log);
  const host = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  baseUrl = `http://${host}:${port}`;
  log('simulated upstream listening', { url: baseUrl, keptJobs: state?.jobs.size ?? 0 });

  const resume = () => {
    for (const task of tasks.values()) {
      if (task.state === 'pending' || task.state === 'running') startRender(task);
      else if (task.callback_url && task.faults.callback !== 'drop' && !task.finalCallbackDelivered) void postCallback(task, view(task));
    }
  };
  if (state?.jobs.size) void Promise.resolve(options.resumeWhen).then(resume, () => undefined);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing.abort();
      state?.close();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closed;
  };

  return {
    url: baseUrl,
    port,
    setFaults(faults: SimFaults) {
      serverFaults = { ...faults };
    },
    tasks,
    stats,
    close,
  };
}
