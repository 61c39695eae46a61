import { capText, upstreamCaps } from '../contracts/upstream';
import { OutboundError, type TextResult } from '../outbound';
import { UpstreamError, type UpstreamPhase } from './provider';

/**
 * What every dialect's adapter does the same way: reading status words, capping what an
 * upstream says before it reaches a task record or a log, and classifying failures as
 * rejected, unavailable or ambiguous (see `UpstreamErrorKind`).
 */

/** The caps live with the contracts (every dialect's schemas apply them); adapters import them from here too. */
export { capText, upstreamCaps, upstreamText } from '../contracts/upstream';

/**
 * Status words of the dialects we speak and of the relays in front of them (new-api style
 * resellers pass some vendors' own words through). Anything else means "still running".
 */
const phases: Readonly<Record<string, UpstreamPhase>> = {
  pending: 'pending',
  queued: 'pending',
  submitted: 'pending',
  not_start: 'pending',
  preparing: 'pending',
  in_queue: 'pending', // fal
  starting: 'pending', // Replicate
  running: 'running',
  processing: 'running',
  in_progress: 'running',
  generating: 'running',
  succeeded: 'succeeded',
  success: 'succeeded',
  completed: 'succeeded',
  complete: 'succeeded',
  finished: 'succeeded',
  error: 'failed',
  failed: 'failed',
  failure: 'failed',
  fail: 'failed',
  cancelled: 'failed',
  canceled: 'failed',
  expired: 'failed', // OpenRouter
  aborted: 'failed', // Replicate
};

export const phaseOf = (word: string): UpstreamPhase => phases[word.trim().toLowerCase()] ?? 'running';

/** A percentage (a number, or text such as "45%" as some relays send) as a whole number in 0..100; anything unreadable is 0. */
export function clampProgress(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number.parseFloat(value) : Number.NaN;
  return Number.isFinite(n) ? Math.max(0, Math.min(100, Math.round(n))) : 0;
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export const isOk = (response: TextResult): boolean => response.status >= 200 && response.status < 300;

/** The reason, code and type of an error answer, in the shapes upstreams use (`{error: {message, type, code}}` first). */
export function errorDetails(text: string, status: number): { message: string; code?: string; type?: string } {
  const body = safeJson(text) as
    | { error?: { message?: unknown; code?: unknown; type?: unknown } | string; message?: unknown; code?: unknown; msg?: unknown; detail?: unknown; title?: unknown }
    | undefined;
  const nested = typeof body?.error === 'object' && body.error !== null ? body.error : undefined;
  // fal's FastAPI-style `detail` (a string, or a list of {msg}); Replicate's problem `detail` and `title`.
  const detail = Array.isArray(body?.detail)
    ? body.detail.map((d: unknown) => (typeof d === 'object' && d !== null ? (d as { msg?: unknown }).msg : d)).filter((m): m is string => typeof m === 'string').join('; ')
    : body?.detail;
  const message = [nested?.message, typeof body?.error === 'string' ? body.error : undefined, body?.message, body?.msg, detail, body?.title].find(
    (m): m is string => typeof m === 'string' && m.length > 0,
  );
  const word = (v: unknown) => (typeof v === 'string' && v.length > 0 ? capText(v, upstreamCaps.state) : undefined);
  return {
    message: message ?? (text.trim().slice(0, 200) || `HTTP ${status}`),
    code: word(nested?.code) ?? word(body?.code),
    type: word(nested?.type),
  };
}

/** Proxies in front of an upstream answer these when the upstream took too long or hung up: it may have the job. */
const proxyUncertain = new Set([502, 504, 524]);
/** Rate limits, timeouts and conflicts at the upstream itself, our own credentials or credit (402): it took nothing. */
const notTaken = new Set([401, 402, 403, 404, 408, 409, 425, 429]);

/** Codes and types meaning "not this upstream, not now", whatever the status says. */
const unavailableWords = new Set([
  'model_not_found',
  'model_not_available',
  'rate_limit_exceeded',
  'rate_limit_error',
  'insufficient_quota',
  'billing_hard_limit_reached',
  'invalid_api_key',
  'authentication_error',
  'server_error',
  'overloaded',
  'engine_overloaded',
  'service_unavailable',
]);

export type Exchange = 'submit' | 'poll';

/**
 * An upstream's non-2xx answer as an `UpstreamError`.
 * - After a submit, a proxy's 502/504/524 is `ambiguous`: the job may exist behind it.
 * - Its own 5xx, 429, 401/403 (our key), 404 or an unknown-model code: `unavailable`.
 * - Any other 4xx (moderation, invalid input): `rejected`, with the upstream's reason.
 * - A poll that fails is never a verdict on the job: `unavailable`.
 */
export function classifyAnswer(response: TextResult, during: Exchange): UpstreamError {
  const { status } = response;
  const { message, code, type } = errorDetails(response.bodyText, status);
  const retryAfter = Number(response.headers['retry-after']);
  const kind =
    during === 'poll'
      ? 'unavailable'
      : proxyUncertain.has(status)
        ? 'ambiguous'
        : status >= 500 || notTaken.has(status) || unavailableWords.has(code ?? '') || unavailableWords.has(type ?? '')
          ? 'unavailable'
          : 'rejected';
  return new UpstreamError(
    kind,
    capText(`upstream answered ${status}: ${message}`, upstreamCaps.message),
    status,
    code,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
}

/**
 * A request that got no answer. Refused connections, names that do not resolve and
 * refused addresses mean the upstream never saw it: `unavailable`. A submit that timed out
 * or lost its connection once sent may have made a job: `ambiguous` (a connect timeout is
 * counted here too, since the outbound module reports both as one timeout; erring this way
 * only delays a failover, it never pays twice). A poll is always `unavailable`.
 */
export function classifyTransport(error: unknown, during: Exchange, timeoutMs: number): UpstreamError {
  const outbound = error instanceof OutboundError ? error : undefined;
  const timedOut = outbound?.code === 'timeout' || outbound?.code === 'aborted';
  const cause = (outbound?.cause as NodeJS.ErrnoException | undefined)?.code;
  const neverSent =
    outbound === undefined ||
    outbound.code === 'blocked_address' ||
    outbound.code === 'bad_url' ||
    (cause !== undefined && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_NONAME', 'ETIMEDOUT'].includes(cause));
  const kind = during === 'submit' && !neverSent ? 'ambiguous' : 'unavailable';
  const message = timedOut
    ? `upstream did not answer within ${timeoutMs} ms`
    : `upstream unreachable: ${(error as Error).message}`;
  return new UpstreamError(kind, capText(message, upstreamCaps.message));
}
