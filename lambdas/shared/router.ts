import type { RouteConfig } from './catalog';
import { metric, record, unit } from './metrics';
import type { CircuitPermit, Circuits } from './circuit-breaker';
import { UpstreamError, type UpstreamJob, type UpstreamProvider } from './providers/provider';

/**
 * Which upstream gets a task, and what to make of its answer. A task goes to its model's
 * first route whose circuit lets it through:
 *
 * - `unavailable` (refused connection, 429, the upstream's own 500/503, unknown model): it
 *   certainly did not take the job, so the next route gets it at once;
 * - `rejected` (content policy, bad input): the task fails with the upstream's reason and no
 *   other route is tried, since another would refuse it too or generate what the first refused;
 * - `ambiguous` (timeout after sending, dropped connection, a proxy's 502/504/524): it may
 *   have taken the job, and a second paid generation is worse than a late one, so no other
 *   route is tried until that upstream says it has no job for the task (`findJob`) or
 *   `ambiguousWaitMs` has passed; a callback it sends meanwhile adopts its job.
 *
 * Every call and its outcome is an attempt, kept on the task for the operator.
 */

export type AttemptOutcome = 'submitted' | 'rejected' | 'unavailable' | 'ambiguous' | 'adopted' | 'no_job';

export interface RouteAttempt {
  upstream: string;
  at: number;
  outcome: AttemptOutcome;
  message?: string;
}

export interface UpstreamRegistry {
  get(name: string): Promise<UpstreamProvider>;
}

export interface RouterNeeds {
  upstreams: UpstreamRegistry;
  circuits: Circuits;
  now(): number;
  /**
   * The task's submit claim, taken (or renewed) before each upstream call, so two workers
   * never submit one task at once; false when another worker holds it.
   */
  claim(): Promise<boolean>;
  /** With no way to ask the upstream, how long an ambiguous answer holds the task at it. */
  ambiguousWaitMs: number;
  /** Where the upstream can be asked (`findJob`), how soon after an ambiguous answer. */
  findJobAfterMs: number;
  /** The call that makes the job; a submit unless given (a remix asks the upstream to remix its original). */
  send?(provider: UpstreamProvider, job: UpstreamJob): Promise<{ upstreamId: string }>;
}

export interface RoutingTask {
  /** Attempts so far, oldest first (as stored: outcomes are words). */
  attempts?: readonly { upstream: string; at: number; outcome: string; message?: string }[];
}

export type RouteResult =
  /** A job exists at `upstream`: made now, or found after an ambiguous answer (`adopted`). */
  | { kind: 'submitted'; route: number; upstream: string; upstreamId: string; adopted: boolean; attempts: RouteAttempt[] }
  /** The upstream refused the content: the task fails with `message`. */
  | { kind: 'rejected'; route: number; upstream: string; message: string; attempts: RouteAttempt[] }
  /** An ambiguous answer holds the task at `upstream` until `until` (or its callback). */
  | { kind: 'held'; route: number; upstream: string; until: number; reason: string; attempts: RouteAttempt[] }
  /** No route took it: try again later, not before `retryAfterSeconds` when an upstream said so. */
  | { kind: 'deferred'; reason: string; retryAfterSeconds?: number; attempts: RouteAttempt[] }
  /** Another worker holds the task's submit claim. */
  | { kind: 'busy'; attempts: RouteAttempt[] };

/** Failures that say the upstream is unwell, not that this one request was wrong for it. */
function countsAgainstCircuit(error: unknown): boolean {
  if (!(error instanceof UpstreamError)) return true;
  if (error.kind === 'rejected') return false;
  return error.status === undefined || error.status >= 500 || error.status === 429 || error.status === 408;
}

/** The last attempt, when it left the task held at an upstream that may have its job. */
export function pendingAmbiguity(task: RoutingTask): NonNullable<RoutingTask['attempts']>[number] | undefined {
  const last = task.attempts?.at(-1);
  return last?.outcome === 'ambiguous' ? last : undefined;
}

export async function routeTask(
  task: RoutingTask,
  routes: readonly RouteConfig[],
  jobFor: (route: RouteConfig) => UpstreamJob,
  d: RouterNeeds,
): Promise<RouteResult> {
  const attempts: RouteAttempt[] = [];
  const note = (upstream: string, outcome: AttemptOutcome, message?: string) => {
    const attempt: RouteAttempt = { upstream, at: d.now(), outcome, ...(message ? { message: message.slice(0, 500) } : {}) };
    attempts.push(attempt);
    return attempt;
  };

  const pending = pendingAmbiguity(task);
  if (pending) {
    const route = routes.findIndex((r) => r.upstream === pending.upstream);
    const holdUntil = pending.at + d.ambiguousWaitMs;
    const provider = route >= 0 ? await d.upstreams.get(pending.upstream) : undefined;
    if (provider?.findJob) {
      try {
        const found = await provider.findJob(jobFor(routes[route]!), pending.at);
        if (found) {
          note(pending.upstream, 'adopted', `found job ${found} after the ambiguous answer`);
          return { kind: 'submitted', route, upstream: pending.upstream, upstreamId: found, adopted: true, attempts };
        }
        note(pending.upstream, 'no_job', 'the upstream has no job for this task');
      } catch (error) {
        const reason = `could not ask the upstream for its job: ${(error as Error).message}`;
        if (d.now() < holdUntil)
          return { kind: 'held', route, upstream: pending.upstream, until: Math.min(holdUntil, d.now() + d.findJobAfterMs), reason, attempts };
      }
    } else if (route >= 0 && d.now() < holdUntil) {
      return { kind: 'held', route, upstream: pending.upstream, until: holdUntil, reason: pending.message ?? 'ambiguous answer', attempts };
    }
  }

  let reason = '';
  let retryAfterSeconds: number | undefined;
  for (const [index, route] of routes.entries()) {
    const permit = await d.circuits.allow(route.upstream);
    if (!permit) {
      reason ||= `the circuit of every route is open`;
      continue;
    }
    if (!(await d.claim())) return { kind: 'busy', attempts };
    const provider = await d.upstreams.get(route.upstream);
    // A later route is a failover from the one before it.
    if (index > 0 && attempts.length > 0) record(metric.failovers, 1, undefined, { upstream: attempts.at(-1)!.upstream });
    const started = d.now();
    const timed = (outcome: string) => {
      record(metric.upstreamSubmitLatency, d.now() - started, unit.Milliseconds, { upstream: route.upstream });
      record(metric.upstreamSubmits, 1, undefined, { upstream: route.upstream, outcome });
    };
    try {
      const { upstreamId } = await (d.send ? d.send(provider, jobFor(route)) : provider.submit(jobFor(route)));
      timed('submitted');
      await d.circuits.succeeded(permit);
      note(route.upstream, 'submitted');
      return { kind: 'submitted', route: index, upstream: route.upstream, upstreamId, adopted: false, attempts };
    } catch (error) {
      const message = (error as Error).message;
      const kind = error instanceof UpstreamError ? error.kind : 'unavailable';
      timed(kind);
      if (kind !== 'rejected') record(metric.upstreamErrors, 1, undefined, { upstream: route.upstream, kind });
      await settle(d.circuits, permit, error);
      const { at } = note(route.upstream, kind, message);
      if (kind === 'rejected') return { kind: 'rejected', route: index, upstream: route.upstream, message, attempts };
      if (kind === 'ambiguous') {
        const until = at + (provider.findJob ? Math.min(d.findJobAfterMs, d.ambiguousWaitMs) : d.ambiguousWaitMs);
        return { kind: 'held', route: index, upstream: route.upstream, until, reason: message, attempts };
      }
      reason = message;
      const after = error instanceof UpstreamError ? error.retryAfterSeconds : undefined;
      if (after !== undefined) retryAfterSeconds = Math.max(retryAfterSeconds ?? 0, after);
    }
  }
  return { kind: 'deferred', reason: reason || 'no route is available', retryAfterSeconds, attempts };
}

async function settle(circuits: Circuits, permit: CircuitPermit, error: unknown) {
  if (countsAgainstCircuit(error)) await circuits.failed(permit, (error as Error).message);
  else await circuits.succeeded(permit);
}
