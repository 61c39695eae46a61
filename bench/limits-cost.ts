import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashKey, keyId } from '../lambdas/shared/api-keys';
import { main as keys } from '../bin/keys';
import { startLocalGateway } from '../local/gateway';

/**
 * What the limit checks add to a submit, through the local gateway: the same submits by a key
 * without limits and by a key with all four (none of them reached), alternating, and the
 * DynamoDB requests each makes. `npx tsx bench/limits-cost.ts [submits]`.
 */

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
const rounds = Number(process.argv[2] ?? 200);
const dataDir = mkdtempSync(join(tmpdir(), 'vtg-limits-bench-'));
const gw = await startLocalGateway({ dataDir, renderMs: 60_000, reconcileEveryMs: 3_600_000, env: { KEY_CACHE_SECONDS: '60' } });

const free = await gw.createKey('no limits');
const limited = await gw.createKey('all limits');
const quiet = { out: () => {}, err: (t: string) => void process.stderr.write(t) };
const set = await keys(['limits', keyId(hashKey(limited)), '--concurrent', '100000', '--rpm', '100000', '--seconds-per-day', '100000000', '--seconds-per-month', '100000000', '--data-dir', dataDir], quiet);
if (set !== 0) throw new Error('could not set the limits');

/** Counts the requests the gateway's DynamoDB client sends, by operation. */
const requests = new Map<string, number>();
const { dynamo } = await import('../lambdas/shared/aws/dynamo');
dynamo().middlewareStack.add(
  (next, context) => async (args) => {
    const name = String(context.commandName ?? 'unknown');
    requests.set(name, (requests.get(name) ?? 0) + 1);
    return next(args);
  },
  { step: 'initialize', name: 'countRequests' },
);

async function submit(key: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${gw.url}/v1/videos/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sora-2', prompt: 'a bench of limits' }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`submit answered ${res.status}`);
  return performance.now() - started;
}

const times: Record<'free' | 'limited', number[]> = { free: [], limited: [] };
const counted: Record<'free' | 'limited', Map<string, number>> = { free: new Map(), limited: new Map() };
for (const key of [free, limited]) await submit(key); // warm: key cache, connections
for (let i = 0; i < rounds; i++) {
  for (const [name, key] of [['free', free], ['limited', limited]] as const) {
    requests.clear();
    times[name].push(await submit(key));
    for (const [op, n] of requests) counted[name].set(op, (counted[name].get(op) ?? 0) + n);
  }
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
for (const name of ['free', 'limited'] as const) {
  const perSubmit = Object.fromEntries([...counted[name]].map(([op, n]) => [op, n / rounds]));
  console.log(`${name.padEnd(8)} p50 ${pct(times[name], 50).toFixed(1)} ms  p95 ${pct(times[name], 95).toFixed(1)} ms  DynamoDB per submit ${JSON.stringify(perSubmit)}`);
}
await gw.stop();
rmSync(dataDir, { recursive: true, force: true });
