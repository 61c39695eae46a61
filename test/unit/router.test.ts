import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../lambdas/shared/catalog';
import type { CircuitPermit, Circuits } from '../../lambdas/shared/circuit-breaker';
import { UpstreamError, type UpstreamJob, type UpstreamProvider } from '../../lambdas/shared/providers/provider';
import { routeTask, type RouteAttempt, type RouterNeeds } from '../../lambdas/shared/router';

const T0 = Date.UTC(2026, 11, 2, 12);

/** An upstream whose submit answers are scripted: an id, or an error to throw. */
function upstream(name: string, answers: (string | UpstreamError)[], findJob?: (job: UpstreamJob, since: number) => Promise<string | null>) {
  const submits: UpstreamJob[] = [];
  const provider: UpstreamProvider & { submits: UpstreamJob[] } = {
    name,
    kind: 'duomi',
    callsBack: true,
    submits,
    async submit(job) {
      submits.push(job);
      const answer = answers.shift() ?? 'job-default';
      if (answer instanceof UpstreamError) throw answer;
      return { upstreamId: answer };
    },
    status: async () => ({ phase: 'running', state: 'running', progress: 0, message: '' }),
    parseCallback: async () => ({ phase: 'running', state: 'running', progress: 0, message: '' }),
    ...(findJob ? { findJob } : {}),
  };
  return provider;
}

/** Circuits held in memory: `open` names upstreams to skip; outcomes are recorded. */
function circuits(open: string[] = []) {
  const outcomes: string[] = [];
  const c: Circuits & { outcomes: string[] } = {
    outcomes,
    allow: async (name) => (open.includes(name) ? undefined : { upstream: name, probe: false, failures: 0 }),
    succeeded: async (p: CircuitPermit) => void outcomes.push(`${p.upstream} ok`),
    failed: async (p: CircuitPermit) => void outcomes.push(`${p.upstream} failed`),
  };
  return c;
}

const routes: RouteConfig[] = [
  { upstream: 'first', model: 'model-on-first' },
  { upstream: 'second', model: 'model-on-second' },
];
const jobFor = (route: RouteConfig): UpstreamJob => ({
  taskId: 'task_1',
  model: route.model,
  prompt: 'a fox',
  aspectRatio: '16:9',
  duration: 10,
  imageUrls: [],
  characters: [],
  callbackUrl: 'http://127.0.0.1/cb',
});

function needs(providers: UpstreamProvider[], overrides: Partial<RouterNeeds> = {}): RouterNeeds & { claims: number } {
  let now = T0;
  const d = {
    claims: 0,
    upstreams: { get: async (name: string) => providers.find((p) => p.name === name)! },
    circuits: circuits(),
    now: () => (now += 10),
    claim: async () => {
      d.claims++;
      return true;
    },
    ambiguousWaitMs: 600_000,
    findJobAfterMs: 5_000,
    ...overrides,
  };
  return d;
}

describe('routing a task to its model\'s routes', () => {
  it('the first route takes it when its upstream answers', async () => {
    const first = upstream('first', ['job-1']);
    const second = upstream('second', []);
    const result = await routeTask({}, routes, jobFor, needs([first, second]));
    expect(result).toMatchObject({ kind: 'submitted', route: 0, upstream: 'first', upstreamId: 'job-1', adopted: false });
    expect(first.submits.map((j) => j.model)).toEqual(['model-on-first']);
    expect(second.submits).toHaveLength(0);
  });

  it('an upstream that certainly did not take the job hands it to the next route at once, with the route\'s own model id', async () => {
    const first = upstream('first', [new UpstreamError('unavailable', 'upstream answered 503: overloaded', 503)]);
    const second = upstream('second', ['job-2']);
    const d = needs([first, second]);
    const result = await routeTask({}, routes, jobFor, d);
    expect(result).toMatchObject({ kind: 'submitted', route: 1, upstream: 'second', upstreamId: 'job-2' });
    expect(second.submits.map((j) => j.model)).toEqual(['model-on-second']);
    expect(result.attempts.map((a) => [a.upstream, a.outcome])).toEqual([
      ['first', 'unavailable'],
      ['second', 'submitted'],
    ]);
    expect(result.attempts[0]!.message).toBe('upstream answered 503: overloaded');
    expect((d.circuits as ReturnType<typeof circuits>).outcomes).toEqual(['first failed', 'second ok']);
    // The claim is taken before each upstream call.
    expect(d.claims).toBe(2);
  });

  it('a content refusal fails the task with the upstream\'s reason and tries no other route; the circuit counts it as an answer', async () => {
    const first = upstream('first', [new UpstreamError('rejected', 'upstream answered 400: prompt violates content policy', 400)]);
    const second = upstream('second', ['job-2']);
    const d = needs([first, second]);
    const result = await routeTask({}, routes, jobFor, d);
    expect(result).toMatchObject({ kind: 'rejected', route: 0, upstream: 'first', message: 'upstream answered 400: prompt violates content policy' });
    expect(second.submits).toHaveLength(0);
    expect((d.circuits as ReturnType<typeof circuits>).outcomes).toEqual(['first ok']);
  });

  it('an ambiguous answer holds the task at that upstream for the wait, tries no other route, and counts against its circuit', async () => {
    const first = upstream('first', [new UpstreamError('ambiguous', 'upstream did not answer within 500 ms')]);
    const second = upstream('second', ['job-2']);
    const d = needs([first, second]);
    const result = await routeTask({}, routes, jobFor, d);
    expect(result).toMatchObject({ kind: 'held', route: 0, upstream: 'first', reason: 'upstream did not answer within 500 ms' });
    const held = result as Extract<typeof result, { kind: 'held' }>;
    expect(held.until - held.attempts[0]!.at).toBe(600_000);
    expect(second.submits).toHaveLength(0);
    expect((d.circuits as ReturnType<typeof circuits>).outcomes).toEqual(['first failed']);

    // Resubmitted within the wait: still held, nothing sent anywhere.
    const again = await routeTask({ attempts: held.attempts }, routes, jobFor, d);
    expect(again).toMatchObject({ kind: 'held', upstream: 'first', until: held.until, attempts: [] });
    expect(first.submits).toHaveLength(1);
    expect(second.submits).toHaveLength(0);
  });

  it('after the wait, routing starts again from the first route', async () => {
    const first = upstream('first', [new UpstreamError('unavailable', 'refused', undefined)]);
    const second = upstream('second', ['job-2']);
    const attempts: RouteAttempt[] = [{ upstream: 'first', at: T0 - 600_001, outcome: 'ambiguous', message: 'timeout' }];
    const result = await routeTask({ attempts }, routes, jobFor, needs([first, second]));
    expect(result).toMatchObject({ kind: 'submitted', upstream: 'second' });
    expect(first.submits).toHaveLength(1);
  });

  it('where the dialect can look jobs up, a job found after an ambiguous answer is adopted and nothing is submitted', async () => {
    const seen: number[] = [];
    const first = upstream('first', [], async (job, since) => {
      seen.push(since);
      return job.model === 'model-on-first' ? 'job-found' : null;
    });
    const second = upstream('second', ['job-2']);
    const attempts: RouteAttempt[] = [{ upstream: 'first', at: T0 - 1000, outcome: 'ambiguous' }];
    const result = await routeTask({ attempts }, routes, jobFor, needs([first, second]));
    expect(result).toMatchObject({ kind: 'submitted', route: 0, upstream: 'first', upstreamId: 'job-found', adopted: true });
    expect(result.attempts.map((a) => a.outcome)).toEqual(['adopted']);
    expect(seen).toEqual([T0 - 1000]);
    expect(first.submits).toHaveLength(0);
    expect(second.submits).toHaveLength(0);
  });

  it('where the upstream says it has no job, the next route may have the task at once', async () => {
    const first = upstream('first', [new UpstreamError('unavailable', 'upstream answered 503: overloaded', 503)], async () => null);
    const second = upstream('second', ['job-2']);
    const attempts: RouteAttempt[] = [{ upstream: 'first', at: T0 - 1000, outcome: 'ambiguous' }];
    const result = await routeTask({ attempts }, routes, jobFor, needs([first, second]));
    expect(result).toMatchObject({ kind: 'submitted', upstream: 'second', upstreamId: 'job-2' });
    expect(result.attempts.map((a) => [a.upstream, a.outcome])).toEqual([
      ['first', 'no_job'],
      ['first', 'unavailable'],
      ['second', 'submitted'],
    ]);
  });

  it('an ambiguous answer from an upstream that can be asked is checked again soon, not after the whole wait', async () => {
    const first = upstream('first', [new UpstreamError('ambiguous', 'dropped')], async () => {
      throw new UpstreamError('unavailable', 'list failed');
    });
    const d = needs([first, upstream('second', [])]);
    const held = await routeTask({}, routes, jobFor, d);
    expect(held).toMatchObject({ kind: 'held' });
    expect((held as { until: number }).until - held.attempts[0]!.at).toBe(5_000);
    // The look-up fails: held again, a look-up interval later.
    const again = await routeTask({ attempts: held.attempts }, routes, jobFor, d);
    expect(again).toMatchObject({ kind: 'held', reason: expect.stringContaining('list failed') });
  });

  it('routes whose circuit is open are skipped without a call', async () => {
    const first = upstream('first', ['job-1']);
    const second = upstream('second', ['job-2']);
    const result = await routeTask({}, routes, jobFor, needs([first, second], { circuits: circuits(['first']) }));
    expect(result).toMatchObject({ kind: 'submitted', upstream: 'second' });
    expect(first.submits).toHaveLength(0);
  });

  it('every route down: deferred with the last reason and the longest Retry-After any upstream gave', async () => {
    const first = upstream('first', [new UpstreamError('unavailable', 'upstream answered 429: slow down', 429, undefined, 7)]);
    const second = upstream('second', [new UpstreamError('unavailable', 'upstream unreachable: refused')]);
    const result = await routeTask({}, routes, jobFor, needs([first, second]));
    expect(result).toMatchObject({ kind: 'deferred', reason: 'upstream unreachable: refused', retryAfterSeconds: 7 });
    expect(result.attempts).toHaveLength(2);
  });

  it('every circuit open: deferred without a call', async () => {
    const result = await routeTask({}, routes, jobFor, needs([upstream('first', []), upstream('second', [])], { circuits: circuits(['first', 'second']) }));
    expect(result).toEqual({ kind: 'deferred', reason: 'the circuit of every route is open', retryAfterSeconds: undefined, attempts: [] });
  });

  it('a model-not-found answer moves on but does not count against the upstream\'s circuit', async () => {
    const first = upstream('first', [new UpstreamError('unavailable', 'upstream answered 404: model not found', 404)]);
    const d = needs([first, upstream('second', ['job-2'])]);
    await routeTask({}, routes, jobFor, d);
    expect((d.circuits as ReturnType<typeof circuits>).outcomes).toEqual(['first ok', 'second ok']);
  });

  it('another worker holding the submit claim stops routing before any call', async () => {
    const first = upstream('first', ['job-1']);
    const result = await routeTask({}, routes, jobFor, needs([first, upstream('second', [])], { claim: async () => false }));
    expect(result).toEqual({ kind: 'busy', attempts: [] });
    expect(first.submits).toHaveLength(0);
  });
});

describe('what a client may read of an upstream\'s words', () => {
  it('has the upstream\'s name, host and model id taken out', async () => {
    const { clientMessage } = await import('../../lambdas/shared/white-label');
    const who = { name: 'reseller-a', baseUrl: 'https://api.reseller-a.example:8443/v1', model: 'doubao-seedance-2-0-pro' };
    expect(
      clientMessage('upstream answered 400: reseller-a (api.reseller-a.example:8443) refuses doubao-seedance-2-0-pro prompts about weapons', who),
    ).toBe('upstream answered 400: the upstream (the upstream) refuses the model prompts about weapons');
    expect(clientMessage('prompt violates content policy', who)).toBe('prompt violates content policy');
    // Whole words only: a model id inside another word stays.
    expect(clientMessage('sora-2-pro is fine', { model: 'sora-2' })).toBe('sora-2-pro is fine');
  });
});
