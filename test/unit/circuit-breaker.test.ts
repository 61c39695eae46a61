import { beforeEach, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../lambdas/shared/circuit-breaker';
import { embeddedDynamo } from './dynalite';

const dynamo = embeddedDynamo();

let t: number;
const clock = { now: () => t };
const settings = { failureThreshold: 3, coolDownMs: 30_000, probeLeaseMs: 5_000 };
let table: string;
/** Two breakers on one table: two Lambdas sharing the circuit. */
let a: CircuitBreaker;
let b: CircuitBreaker;

beforeEach(async () => {
  table = await dynamo.newTable('circuits');
  t = Date.UTC(2026, 11, 2, 12);
  a = new CircuitBreaker(dynamo.db, table, settings, clock);
  b = new CircuitBreaker(dynamo.db, table, settings, clock);
});

async function fail(breaker: CircuitBreaker, times: number) {
  for (let i = 0; i < times; i++) {
    const permit = await breaker.allow('up-a');
    if (!permit) throw new Error('expected a permit');
    await breaker.failed(permit, `503 number ${i + 1}`);
  }
}

describe('a circuit per upstream, shared through the table', () => {
  it('an upstream never seen is closed, and a success on it writes nothing', async () => {
    const permit = await a.allow('up-a');
    expect(permit).toEqual({ upstream: 'up-a', probe: false, failures: 0 });
    await a.succeeded(permit!);
    expect(await a.state('up-a')).toEqual({ upstream: 'up-a', phase: 'closed', failures: 0 });
  });

  it('opens after the threshold of consecutive failures, counted across breakers, and skips its upstream for the cool-down', async () => {
    await fail(a, 2);
    await fail(b, 1);
    expect(await b.allow('up-a')).toBeUndefined();
    expect(await a.allow('up-a')).toBeUndefined();
    expect(await a.state('up-a')).toMatchObject({ phase: 'open', failures: 3, openUntil: t + 30_000, lastError: '503 number 1' });
    // Another upstream is not affected.
    expect(await a.allow('up-b')).toMatchObject({ probe: false });
  });

  it('a success resets the count, so failures must be consecutive', async () => {
    await fail(a, 2);
    await a.succeeded((await a.allow('up-a'))!);
    await fail(b, 2);
    expect(await a.allow('up-a')).toMatchObject({ probe: false, failures: 2 });
  });

  it('failures scattered among successes of concurrent calls do not add up to an open circuit', async () => {
    // Ten calls at once, the way a busy API sees them; one in five fails, and the rest succeed.
    for (let round = 0; round < 6; round++) {
      const permits = await Promise.all(Array.from({ length: 10 }, () => a.allow('up-a')));
      await Promise.all(permits.map((p, i) => (i % 5 === 0 ? b.failed(p!, `503 in round ${round}`) : a.succeeded(p!))));
    }
    expect((await a.state('up-a')).phase).toBe('closed');
  });

  it('a dead upstream still opens: each wave of concurrent failures counts once, and the next wave counts again', async () => {
    for (let wave = 1; wave <= 3; wave++) {
      const permits = await Promise.all(Array.from({ length: 4 }, () => a.allow('up-a')));
      expect(permits.every((p) => p !== undefined)).toBe(true);
      await Promise.all(permits.map((p) => b.failed(p!, 'connection refused')));
      expect(await a.state('up-a')).toMatchObject({ failures: wave, phase: wave < 3 ? 'closed' : 'open' });
    }
  });

  it('after the cool-down one caller probes (half-open); its success closes the circuit', async () => {
    await fail(a, 3);
    t += 30_000;
    expect((await a.state('up-a')).phase).toBe('half_open');
    const probe = await a.allow('up-a');
    expect(probe).toMatchObject({ probe: true });
    // While the probe is out, nobody else gets through.
    expect(await b.allow('up-a')).toBeUndefined();
    await a.succeeded(probe!);
    expect(await b.allow('up-a')).toEqual({ upstream: 'up-a', probe: false, failures: 0 });
    expect((await b.state('up-a')).phase).toBe('closed');
  });

  it('a failed probe opens the circuit for another cool-down', async () => {
    await fail(a, 3);
    t += 30_000;
    const probe = await a.allow('up-a');
    await a.failed(probe!, 'still down');
    expect(await b.allow('up-a')).toBeUndefined();
    expect(await a.state('up-a')).toMatchObject({ phase: 'open', openUntil: t + 30_000, lastError: 'still down' });
    t += 30_000;
    expect(await b.allow('up-a')).toMatchObject({ probe: true });
  });

  it('a probe that never reports back frees the half-open circuit after its lease', async () => {
    await fail(a, 3);
    t += 30_000;
    expect(await a.allow('up-a')).toMatchObject({ probe: true });
    t += 5_001;
    expect(await b.allow('up-a')).toMatchObject({ probe: true });
  });

  it('a success that started before the circuit opened does not close it', async () => {
    const early = (await a.allow('up-a'))!;
    await fail(b, 3);
    await a.succeeded({ ...early, failures: 1 });
    expect((await a.state('up-a')).phase).toBe('open');
  });

  it('a breaker that reads in bulk (readCacheMs) sees another breaker open the circuit within its period, and its own failures at once', async () => {
    const bulk = new CircuitBreaker(dynamo.db, table, { ...settings, readCacheMs: 1_000 }, clock);
    expect(await bulk.allow('up-a')).toEqual({ upstream: 'up-a', probe: false, failures: 0 });
    await fail(b, 3);
    // Read before b opened it: for the rest of the period, calls go through and find the upstream down themselves.
    t += 999;
    expect(await bulk.allow('up-a')).toMatchObject({ probe: false });
    t += 1;
    expect(await bulk.allow('up-a')).toBeUndefined();

    const other = 'up-b';
    for (let i = 1; i <= 3; i++) {
      const permit = (await bulk.allow(other))!;
      // Each failure it counted is read back by its next call, so the streak grows and the circuit opens.
      expect(permit.failures).toBe(i - 1);
      await bulk.failed(permit, `503 number ${i}`);
    }
    expect(await bulk.allow(other)).toBeUndefined();
    expect((await a.state(other)).phase).toBe('open');
  });
});
