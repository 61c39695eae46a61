import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { projectRoot } from './lib';

/**
 * V8 CPU profiles of the benchmarks' child processes (`node --cpu-prof`), reduced to self time
 * per category: where a process's CPU went while it did the measured work.
 */
export interface Frame {
  functionName: string;
  url: string;
}

interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A directory for one child's profile, and the `node` flags that write it there at exit. */
export function profileDir(): { flags: string[]; read(): CpuProfile; remove(): void } {
  const path = mkdtempSync(join(os.tmpdir(), 'vtg-bench-cpuprof-'));
  return {
    flags: ['--cpu-prof', `--cpu-prof-dir=${path}`],
    read() {
      const file = readdirSync(path).find((f) => f.endsWith('.cpuprofile'));
      if (file === undefined) throw new Error(`no CPU profile was written in ${path}`);
      return JSON.parse(readFileSync(join(path, file), 'utf8')) as CpuProfile;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/** Microseconds on the clock profiles use (CLOCK_MONOTONIC, as `process.hrtime`). */
export const profileClock = () => Number(process.hrtime.bigint() / 1000n);

/** Node's own code or a native function (no script of a package or of ours). */
export const isBuiltIn = (f: Frame) => f.url === '' || f.url.startsWith('node:');
const phases: Record<string, string> = {
  '(garbage collector)': 'V8: garbage collection',
  '(idle)': 'idle',
  '(program)': 'V8: compile and other',
};

/** Whose code a frame is: a package, or our code by folder. */
export function codeOwner(f: Frame): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  if (pkg) return pkg[1]!;
  const local = f.url.replace(/^file:\/\//, '');
  if (local.startsWith(`${projectRoot}/`)) return `our code: ${local.slice(projectRoot.length + 1).split('/').slice(0, 2).join('/')}`;
  return 'other';
}

/**
 * How a sample is counted. `caller` is, for a Node built-in or native frame, the nearest frame
 * up the stack that is a package's or ours (undefined for V8 phases and for work the event loop
 * started, such as socket reads).
 */
export type Categorize = (frame: Frame, caller: Frame | undefined) => string;

/** Packages and our code by name; built-ins as `<caller>: <function>`, so `Buffer.concat` inside lib-storage shows as such. */
export const byCodeAndBuiltIn: Categorize = (frame, caller) => {
  const phase = phases[frame.functionName];
  if (frame.url === '' && phase) return phase;
  if (!isBuiltIn(frame)) return codeOwner(frame);
  const fn = frame.functionName || '(anonymous)';
  return caller ? `${codeOwner(caller)}: ${fn}` : `Node: ${fn}`;
};

/** Self time in ms per category, counting only samples within [from, to] µs when given. */
export function selfTime(profile: CpuProfile, categorize: Categorize = byCodeAndBuiltIn, window?: { from: number; to: number }): Map<string, number> {
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n);
  const category = new Map<number, string>();
  for (const n of profile.nodes) {
    let caller: Frame | undefined;
    if (isBuiltIn(n.callFrame) && !phases[n.callFrame.functionName]) {
      for (let up = parent.get(n.id); up !== undefined && caller === undefined; up = parent.get(up.id))
        if (!isBuiltIn(up.callFrame)) caller = up.callFrame;
    }
    category.set(n.id, categorize(n.callFrame, caller));
  }
  const totals = new Map<string, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i]!;
    at += delta;
    if (window && (at < window.from || at > window.to)) continue;
    const key = category.get(profile.samples[i]!) ?? 'other';
    totals.set(key, (totals.get(key) ?? 0) + delta / 1000);
  }
  return totals;
}

/** All the time a process was not idle. */
export const busyMs = (totals: Map<string, number>) => [...totals].reduce((sum, [k, ms]) => (k === 'idle' ? sum : sum + ms), 0);

/** The largest categories (idle left out), with the rest summed as 'other'. */
export function topCategories(totals: Map<string, number>, count: number): [string, number][] {
  const busy = [...totals].filter(([k]) => k !== 'idle').sort((a, b) => b[1] - a[1]);
  const top = busy.slice(0, count);
  const rest = busy.slice(count).reduce((sum, [, ms]) => sum + ms, 0);
  return rest > 0 ? [...top, ['other', rest]] : top;
}
