import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon, { type Result } from 'autocannon';
import { benchDir, fixed, pass, progress, projectRoot, quantile, table, tempDir } from './lib';

/**
 * Submit path: `POST /v1/videos/generations` through the local gateway, loaded by autocannon
 * from this process, against a bare server doing the same I/O (see submit-servers.ts).
 */

export const SUBMIT_TARGET = 0.7;

interface Servers {
  gateway: string;
  baseline: string;
  baselineWithUpdate: string;
  apiKey: string;
}

export interface SubmitRun {
  target: 'gateway' | 'baseline' | 'baselineWithUpdate';
  reqPerSec: number;
  p50: number;
  p99: number;
  total: number;
  /** Non-2xx answers, errors and timeouts. */
  failed: number;
}

export interface SubmitOptions {
  connections?: number;
  seconds?: number;
  warmupSeconds?: number;
}

function load(url: string, apiKey: string, connections: number, seconds: number, latencies?: number[]): PromiseLike<Result> {
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: 'sora-2', prompt: 'a red kite over a grey sea, filmed from the beach' }),
    timeout: 10,
  });
  if (latencies) instance.on('response', (_client, status, _bytes, ms) => status >= 200 && status < 300 && latencies.push(ms));
  return instance;
}

export async function measureSubmit(options: SubmitOptions = {}): Promise<SubmitRun[]> {
  const connections = options.connections ?? 10;
  const seconds = options.seconds ?? 10;
  const warmup = options.warmupSeconds ?? 2;
  const data = tempDir('submit');
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, 'submit-servers.ts'), data.path], {
    cwd: projectRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    const lines = createInterface({ input: child.stdout });
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => String(line)),
      exited.then(([code]) => Promise.reject(new Error(`the submit servers exited (${String(code)}) before they were ready`))),
    ]);
    lines.close();
    const servers = JSON.parse(first) as Servers;

    const targets: SubmitRun['target'][] = ['baseline', 'gateway', 'baselineWithUpdate'];
    progress(`submit: warming up each target for ${warmup} s`);
    for (const target of targets) await load(servers[target], servers.apiKey, connections, warmup);

    // Two halves in mirrored order (A B C, then C B A), so a drift in machine load or in the
    // table's size during the run falls on every target alike.
    const totals = new Map(targets.map((t) => [t, { ok: 0, seconds: 0, requests: 0, failed: 0, latencies: [] as number[] }]));
    for (const order of [targets, [...targets].reverse()]) {
      for (const target of order) {
        progress(`submit: ${target}, ${connections} connections × ${seconds / 2} s`);
        const total = totals.get(target)!;
        const r = await load(servers[target], servers.apiKey, connections, seconds / 2, total.latencies);
        total.ok += r['2xx'];
        total.seconds += r.duration;
        total.requests += r.requests.total;
        total.failed += r.non2xx + r.errors + r.timeouts;
      }
    }
    return targets.map((target) => {
      const t = totals.get(target)!;
      return {
        target,
        reqPerSec: t.ok / t.seconds,
        p50: quantile(t.latencies, 0.5),
        p99: quantile(t.latencies, 0.99),
        total: t.requests,
        failed: t.failed,
      };
    });
  } finally {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    data.remove();
  }
}

export function submitReport(runs: readonly SubmitRun[], options: SubmitOptions = {}): string {
  const by = (t: SubmitRun['target']) => runs.find((r) => r.target === t)!;
  const gateway = by('gateway');
  const baseline = by('baseline');
  const withUpdate = by('baselineWithUpdate');
  const row = (name: string, r: SubmitRun, vs: SubmitRun | undefined) => [
    name,
    fixed(r.reqPerSec),
    vs ? `${fixed((r.reqPerSec / vs.reqPerSec) * 100)} %` : '',
    fixed(r.p50, 1),
    fixed(r.p99, 1),
    String(r.total),
    String(r.failed),
  ];
  return [
    `### Submit path: POST /v1/videos/generations, autocannon ${options.connections ?? 10} connections × ${options.seconds ?? 10} s per target (two mirrored halves) on loopback`,
    '',
    table(
      ['target', 'req/s', 'of baseline', 'p50 ms', 'p99 ms', 'requests', 'non-2xx + errors'],
      [
        row('gateway (local, submit Lambda)', gateway, baseline),
        row('baseline: PutItem + upstream POST', baseline, undefined),
        row('baseline + UpdateItem (the gateway\'s 2nd write)', withUpdate, baseline),
      ],
    ),
    '',
    `Gateway at ≥ ${SUBMIT_TARGET * 100} % of the baseline: ${pass(gateway.reqPerSec >= SUBMIT_TARGET * baseline.reqPerSec)}; ` +
      `against the baseline with the same two writes the gateway does: ${fixed((gateway.reqPerSec / withUpdate.reqPerSec) * 100)} %.`,
    'The gateway, dynalite, the simulated upstream (render stalled: no callbacks, no archive work) and both baseline servers share one child process; autocannon runs in the bench process.',
    '',
  ].join('\n');
}
