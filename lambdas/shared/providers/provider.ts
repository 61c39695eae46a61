import type { ProviderKind, UpstreamConfig } from '../catalog';
import type { Config } from '../config';
import type { Character } from '../contracts/fields';

/** What the gateway makes of an upstream's status word. Unknown words mean "still running". */
export type UpstreamPhase = 'pending' | 'running' | 'succeeded' | 'failed';

/** One task as a route hands it to an upstream: the client's request in the gateway's terms. */
export interface UpstreamJob {
  taskId: string;
  /** The route's upstream model id. */
  model: string;
  prompt: string;
  aspectRatio: string;
  duration: number;
  imageUrls: string[];
  characters: Character[];
  /** Our per-task callback URL; kinds that call back put it in their request. */
  callbackUrl: string;
  /** The route's `WxH` for this ratio, for dialects that take a size. */
  size?: string;
  /** The route's resolution word, for dialects that take one. */
  resolution?: string;
}

export interface UpstreamStatus {
  upstreamId?: string;
  phase: UpstreamPhase;
  /** The upstream's own word, kept for logs. */
  state: string;
  progress: number;
  /**
   * Where the finished video is: an http(s) URL, or `s3://bucket/key` for an object the
   * upstream wrote into our bucket (Bedrock), which the archive copies server-side.
   */
  videoUrl?: string;
  /** Extra renditions some dialects supply. */
  thumbnailUrl?: string;
  spritesheetUrl?: string;
  /** The upstream's own reported cost in USD, where its dialect gives one. */
  cost?: number;
  message: string;
}

/**
 * `rejected`: the upstream refused this request for good (content policy, bad input).
 * `unavailable`: it certainly did not take the job (refused connection, 429, its own 5xx,
 * unknown or retired model, our credentials): the next route may get it at once.
 * `ambiguous`: it may have taken the job (timeout after sending, dropped connection, a
 * proxy's 502/504/524): no other route until the gateway has made sure it has none.
 */
export type UpstreamErrorKind = 'rejected' | 'unavailable' | 'ambiguous';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The request a callback arrived with, for dialects that sign or shape callbacks their own way. */
export interface CallbackRequest {
  body: unknown;
  rawBody: string;
  headers: Record<string, string | undefined>;
  /**
   * The upstream job the task holds, from our own record (not from the callback), for
   * dialects that confirm a callback by asking the upstream about that job.
   */
  upstreamId?: string;
}

/**
 * One upstream dialect. One implementation per kind in this folder; the core never looks
 * at a kind, only at this interface.
 */
export interface UpstreamProvider {
  /** The operator's name for this upstream (never shown to clients). */
  readonly name: string;
  readonly kind: ProviderKind;
  /** True when the upstream calls our callback URL; false: the poll worker asks it on a cadence. */
  readonly callsBack: boolean;
  submit(job: UpstreamJob): Promise<{ upstreamId: string }>;
  status(upstreamId: string): Promise<UpstreamStatus>;
  /** A callback as a status; throws `UpstreamError('rejected', …)` for a body that is not this dialect's. */
  parseCallback(request: CallbackRequest): Promise<UpstreamStatus>;
  /**
   * After an ambiguous submit: the id of the job this upstream made for the task, `null`
   * when it certainly has none. Absent where the dialect cannot list or look up jobs.
   */
  findJob?(job: UpstreamJob, submittedAt: number): Promise<string | null>;
  /** Ask the upstream to stop a job, where its dialect can. */
  cancel?(upstreamId: string): Promise<void>;
  /** A new job from a finished one of this upstream's, where its dialect can. */
  remix?(upstreamId: string, job: UpstreamJob): Promise<{ upstreamId: string }>;
}

/** What the registry hands a kind's factory when an upstream of that kind is first used. */
export interface ProviderSettings {
  /** The operator's entry: name, kind, baseUrl, region, timeoutMs. */
  upstream: UpstreamConfig;
  /**
   * The upstream's key: the entry's `apiKey` locally, its own Secrets Manager secret in AWS
   * (read on first use, cached a few minutes). Rejects when the upstream has neither.
   */
  apiKey: () => Promise<string>;
  /** The entry's `timeoutMs`, else UPSTREAM_TIMEOUT_MS. */
  timeoutMs: number;
  /** The whole configuration (bucket, local mode, endpoints), for kinds that need more. */
  config: Config;
}

/** Each kind's file (`providers/<kind>.ts`) exports one of these as `createProvider`. */
export type CreateProvider = (settings: ProviderSettings) => UpstreamProvider | Promise<UpstreamProvider>;
