import type { UpstreamSubmitBody } from '../contracts/upstream';

/** What the gateway makes of an upstream's status word. Unknown words mean "still running". */
export type UpstreamPhase = 'pending' | 'running' | 'succeeded' | 'failed';

export interface UpstreamStatus {
  upstreamId?: string;
  phase: UpstreamPhase;
  /** The upstream's own word, kept for logs. */
  state: string;
  progress: number;
  videoUrl?: string;
  message: string;
}

/**
 * `rejected`: the upstream refused this request for good (content policy, bad input).
 * `unavailable`: down, slow, rate-limited or misconfigured: worth trying again later.
 */
export class UpstreamError extends Error {
  constructor(
    readonly kind: 'rejected' | 'unavailable',
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface UpstreamProvider {
  readonly name: string;
  submit(body: UpstreamSubmitBody): Promise<{ upstreamId: string }>;
  status(upstreamId: string): Promise<UpstreamStatus>;
  parseCallback(body: unknown): UpstreamStatus;
}
