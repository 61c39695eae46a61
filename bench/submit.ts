import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon, { type Result } from 'autocannon';
import { benchDir, fixed, pass, progress, projectRoot, quantile, table, tempDir } from './lib';
import { busyMs, codeOwner, isBuiltIn, profileClock, profileDir, selfTime, type Categorize } from './profile';

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

const targets: SubmitRun['target'][] = ['baseline', 'gateway', 'baselineWithUpdate'];

/** Starts submit-servers.ts in a child process (with `nodeFlags`), runs `use`, then stops it. */
async function withServers<T>(nodeFlags: string[], use: (servers: Servers) => Promise<T>): Promise<T> {
  const data = tempDir('submit');
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(benchDir, 'submit-servers.ts'), data.path], {
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
    return await use(JSON.parse(first) as Servers);
  } finally {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    data.remove();
  }
}

/** Where one request's CPU goes in the servers' process, per target: ms per answered request. */
export type SubmitProfile = Record<SubmitRun['target'], { perRequest: Map<string, number>; reqPerSec: number }>;

export interface SubmitResult {
  runs: SubmitRun[];
  profile: SubmitProfile;
}

const dynamoStandIn = /^(dynalite|classic-level|abstract-level|memory-level|level|level-[\w-]+|lock|async|big\.js|buffer-crc32|lazy|module-error)$/;

/** The servers' process by what the work is for (built-ins counted with the code that called them). */
const submitCategory: Categorize = (frame, caller) => {
  if (frame.url === '' && frame.functionName === '(garbage collector)') return 'V8: garbage collection';
  if (frame.url === '' && frame.functionName === '(idle)') return 'idle';
  const owner = isBuiltIn(frame) ? (caller && codeOwner(caller)) : codeOwner(frame);
  if (owner === undefined) return 'Node: HTTP, sockets, event loop, compiler';
  if (dynamoStandIn.test(owner)) return 'local DynamoDB (dynalite + LevelDB)';
  if (/^@(aws-sdk|smithy|aws-crypto)\//.test(owner)) return 'AWS SDK clients: build, sign, send, parse';
  if (owner === 'zod') return 'zod';
  if (/^@(middy|aws-lambda-powertools)\//.test(owner)) return 'middy + Powertools logger';
  if (owner.startsWith('our code: lambdas')) return 'gateway code (lambdas/)';
  if (owner === 'our code: local/simulated-upstream.ts') return 'simulated upstream';
  if (owner.startsWith('our code: local')) return 'local API Gateway + queue stand-ins (local/)';
  if (owner.startsWith('our code: bench')) return 'baseline servers\' own code';
  return 'other';
};

/** The same three targets again, briefly, with the servers' process under `--cpu-prof`. */
async function profileSubmit(connections: number, seconds: number): Promise<SubmitProfile> {
  const dir = profileDir();
  try {
    const windows = await withServers(dir.flags, async (servers) => {
      const spans = new Map<SubmitRun['target'], { from: number; to: number; ok: number; seconds: number }>();
      for (const target of targets) {
        progress(`submit: ${target} with the servers profiled (diagnostic), ${connections} connections × ${seconds} s`);
        await load(servers[target], servers.apiKey, connections, 1);
        const from = profileClock();
        const r = await load(servers[target], servers.apiKey, connections, seconds);
        spans.set(target, { from, to: profileClock(), ok: r['2xx'], seconds: r.duration });
      }
      return spans;
    });
    const profile = dir.read();
    const perRequest = (t: SubmitRun['target']) => {
      const w = windows.get(t)!;
      return {
        perRequest: new Map([...selfTime(profile, submitCategory, w)].map(([k, ms]) => [k, ms / Math.max(1, w.ok)])),
        reqPerSec: w.ok / w.seconds,
      };
    };
    return { baseline: perRequest('baseline'), gateway: perRequest('gateway'), baselineWithUpdate: perRequest('baselineWithUpdate') };
  } finally {
    dir.remove();
  }
}

export async function measureSubmit(options: SubmitOptions = {}): Promise<SubmitResult> {
  const connections = options.connections ?? 10;
  const seconds = options.seconds ?? 10;
  const warmup = options.warmupSeconds ?? 2;
  const runs = await withServers([], async (servers) => {
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
  });
  return { runs, profile: await profileSubmit(connections, Math.max(2, seconds / 3)) };
}

export function submitReport({ runs, profile }: SubmitResult, options: SubmitOptions = {}): string {
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
    '#### Where a request\'s CPU goes in that process: ms of self time per answered request, from a `--cpu-prof` run of each target (profiling slows it; read as shares)',
    '',
    profileTable(profile),
    '',
  ].join('\n');
}

function profileTable(profile: SubmitProfile): string {
  const categories = [...new Set(targets.flatMap((t) => [...profile[t].perRequest.keys()]))]
    .filter((k) => k !== 'idle')
    .sort((a, b) => (profile.gateway.perRequest.get(b) ?? 0) - (profile.gateway.perRequest.get(a) ?? 0));
  const ms = (t: SubmitRun['target'], k: string) => fixed(profile[t].perRequest.get(k) ?? 0, 2);
  const row = (name: string, f: (t: SubmitRun['target']) => string) => [name, ...['gateway', 'baseline', 'baselineWithUpdate'].map((t) => f(t as SubmitRun['target']))];
  const own = ['gateway code (lambdas/)', 'zod', 'middy + Powertools logger', 'local API Gateway + queue stand-ins (local/)'];
  return [
    table(
      ['spent in', 'gateway', 'baseline', 'baseline + UpdateItem'],
      [
        ...categories.map((k) => row(k, (t) => ms(t, k))),
        row('total busy', (t) => fixed(busyMs(profile[t].perRequest), 2)),
        row('idle (the process waiting)', (t) => ms(t, 'idle')),
        row('req/s while profiled', (t) => fixed(profile[t].reqPerSec)),
      ],
    ),
    '',
    `The gateway's own work (its code, zod, middy and the logger, the local API Gateway stand-in) is ${fixed(
      own.reduce((sum, k) => sum + (profile.gateway.perRequest.get(k) ?? 0), 0),
      2,
    )} ms of CPU per request; the rest is the I/O it shares with the baselines.`,
  ].join('\n');
}
