import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as tasksCli } from '../../bin/tasks';
import { circuitKey } from '../../lambdas/shared/circuit-breaker';
import { reconcileUntil, sleep, startFaultStage, submitOk, viewWhen, type Backstage, type FaultStage } from './fault-helpers';
import type { Harness } from './helpers';

/**
 * Issue 15, routing: through the real local gateway over HTTP, each failover rule and the
 * shared circuit breaker, with what a client sees and what an operator sees.
 */

const COOL_DOWN_SECONDS = 2;

let stage: FaultStage;
let h: Harness;
let ops: Backstage;

beforeAll(async () => {
  stage = await startFaultStage({
    renderMs: 200,
    env: { RESUBMIT_BASE_SECONDS: '1', CIRCUIT_FAILURES: '2', CIRCUIT_COOL_DOWN_SECONDS: String(COOL_DOWN_SECONDS), UPSTREAM_TIMEOUT_MS: '1000' },
  });
  ({ h, ops } = stage);
});

afterAll(() => stage?.close());

/** `npm run tasks -- …` against this gateway's data directory, its output and exit code. */
async function tasks(...args: string[]) {
  let out = '';
  let err = '';
  const code = await tasksCli([...args, '--data-dir', h.dataDir], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe('the circuit breaker', () => {
  it('opens after consecutive failures, skips the upstream for the cool-down, and closes again on a probe\'s success', async () => {
    const upstream = h.gw.upstream;
    upstream.setFaults({ submit: '503' });
    const first = await submitOk(h, { prompt: 'circuit one' });
    const second = await submitOk(h, { prompt: 'circuit two' });
    const received = upstream.stats.submitsReceived;
    expect(await ops.raw(circuitKey('simulated'))).toMatchObject({ circuit: 'open', failures: 2 });

    // While open: a new task is recorded and queued without a call to the upstream.
    const third = await submitOk(h, { prompt: 'circuit three' });
    expect(upstream.stats.submitsReceived).toBe(received);
    expect(await ops.item(third)).toMatchObject({ state: 'queued', upstream_message: 'the circuit of every route is open' });

    // The upstream recovers; after the cool-down one probe goes through and closes the circuit.
    upstream.setFaults({});
    await sleep(COOL_DOWN_SECONDS * 1000);
    for (const id of [first, second, third]) await reconcileUntil(h, `${id} to succeed`, viewWhen(h, id, 'succeeded'), 15_000, 200);
    expect(await ops.raw(circuitKey('simulated'))).toMatchObject({ circuit: 'closed', failures: 0 });

    // The operator sees each attempt.
    const shown = await tasks('show', first);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/simulated +unavailable +upstream answered 503/);
    expect(shown.out).toMatch(/simulated +submitted/);
  });
});
