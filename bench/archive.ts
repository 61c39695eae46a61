import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startSimulatedUpstream, type SimulatedUpstream } from '../local/simulated-upstream';
import { UPLOAD_PART_BYTES, UPLOAD_QUEUE_SIZE } from '../lambdas/shared/videos';
import type { WorkerJob, WorkerResult } from './archive-worker';
import { busyMs, profileDir, selfTime, topCategories } from './profile';
import { GiB, MiB, benchDir, fixed, lastJson, median, pass, progress, projectRoot, runChild, table, tempDir } from './lib';

/**
 * Archiving: the simulated upstream serves a video of each size, and a child process runs
 * `VideoStore.archive` into an embedded s3rver (or, for the baseline, pipes the same bytes
 * straight into a local file). Throughput and the child's peak RSS growth, per run.
 */

export const RSS_TARGET = 96 * MiB;
export const RSS_SPREAD_TARGET = 16 * MiB;
export const THROUGHPUT_TARGET = 0.6;

const BUCKET = 'video-task-gateway-videos';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Ask the simulated upstream for a finished task whose video has `bytes` bytes; returns its URL. */
async function renderedVideo(upstream: SimulatedUpstream, bytes: number): Promise<string> {
  const res = await fetch(`${upstream.url}/v1/videos/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sora-2', prompt: `benchmark video sim:bytes=${bytes} sim:render=10` }),
  });
  if (!res.ok) throw new Error(`the simulated upstream refused the task: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  for (let i = 0; i < 500; i++) {
    const task = upstream.tasks.get(id);
    if (task?.state === 'succeeded') {
      if (task.video.bytes !== bytes) throw new Error(`asked for ${bytes} bytes, the upstream made ${task.video.bytes}`);
      return task.videoUrl;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the simulated upstream did not finish rendering');
}

interface ChildService {
  endpoint: string;
  cpuMs(): number;
  close(): Promise<void>;
}

/** A helper process that prints `{"endpoint"}` when ready and stops when its stdin closes. */
async function startService(script: string, args: string[], nodeFlags: string[] = []): Promise<ChildService> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(benchDir, script), ...args], {
    cwd: projectRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => String(line)),
    exited.then(([code]) => Promise.reject(new Error(`${script} exited (${String(code)}) before it was ready`))),
  ]);
  lines.close();
  const { endpoint } = JSON.parse(first) as { endpoint: string };
  return {
    endpoint,
    cpuMs: () => processCpuMs(child.pid!),
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** CPU time (user + system) a process has used so far, from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function objectSize(endpoint: string, key: string): Promise<number | undefined> {
  const s3 = new S3Client({ endpoint, region: 'us-east-1', credentials, forcePathStyle: true });
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ContentLength;
  } finally {
    s3.destroy();
  }
}

async function runWorker(job: WorkerJob, nodeFlags: string[] = []): Promise<WorkerResult> {
  const result = await runChild(process.execPath, [...nodeFlags, '--import', 'tsx', join(benchDir, 'archive-worker.ts'), JSON.stringify(job)], {
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'WARN', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    timeoutMs: 300_000,
  });
  if (result.code !== 0) throw new Error(`the ${job.mode} worker failed (exit ${result.code}):\n${result.stderr}`);
  return lastJson<WorkerResult>(result, `${job.mode} worker`);
}

export interface RunResult extends WorkerResult {
  /** CPU the bench process (the simulated upstream) spent during the run. */
  upstreamCpuMs: number;
  /** CPU the s3rver process spent during the run (archive only). */
  s3CpuMs: number;
}

type Mode = 'file' | 'archive' | 'archive-to-sink';

/** One run, in temp storage that is deleted afterwards (a 1 GiB video is 1 GiB on disk, or more while s3rver assembles it). */
async function runOnce(mode: Mode, url: string, bytes: number): Promise<RunResult> {
  const tmp = tempDir(`archive-${mode}`);
  try {
    if (mode === 'file') {
      const cpu0 = process.cpuUsage();
      const result = await runWorker({ mode, url, bytes, outFile: join(tmp.path, 'video.mp4') });
      const cpu = process.cpuUsage(cpu0);
      return { ...result, upstreamCpuMs: (cpu.user + cpu.system) / 1000, s3CpuMs: 0 };
    }
    const s3 = mode === 'archive' ? await startService('s3rver-child.ts', [tmp.path, BUCKET]) : await startService('s3-sink-child.ts', []);
    try {
      const key = `videos/bench-${bytes}.mp4`;
      const s3Cpu0 = s3.cpuMs();
      const cpu0 = process.cpuUsage();
      const result = await runWorker({ mode: 'archive', url, bytes, s3Endpoint: s3.endpoint, bucket: BUCKET, key });
      const cpu = process.cpuUsage(cpu0);
      const s3CpuMs = s3.cpuMs() - s3Cpu0;
      if (mode === 'archive') {
        const stored = await objectSize(s3.endpoint, key);
        if (stored !== bytes) throw new Error(`s3rver holds ${stored} bytes for ${key}, expected ${bytes}`);
      }
      return { ...result, upstreamCpuMs: (cpu.user + cpu.system) / 1000, s3CpuMs };
    } finally {
      await s3.close();
    }
  } finally {
    tmp.remove();
  }
}

/** Self time per category of one profiled archive run, in ms per MiB moved. */
export interface ArchiveProfile {
  worker: Map<string, number>;
  s3rver: Map<string, number>;
}

/** One more archive run into s3rver with both processes under `--cpu-prof` (a diagnostic: profiling slows it). */
async function profileOnce(url: string, bytes: number): Promise<ArchiveProfile> {
  const tmp = tempDir('archive-profiled');
  const workerProfile = profileDir();
  const s3Profile = profileDir();
  try {
    const s3 = await startService('s3rver-child.ts', [tmp.path, BUCKET], s3Profile.flags);
    let result: WorkerResult;
    try {
      result = await runWorker({ mode: 'archive', url, bytes, s3Endpoint: s3.endpoint, bucket: BUCKET, key: 'videos/profiled.mp4' }, workerProfile.flags);
    } finally {
      await s3.close();
    }
    const perMiB = (totals: Map<string, number>) => new Map([...totals].map(([k, ms]) => [k, ms / (bytes / MiB)]));
    return {
      worker: perMiB(selfTime(workerProfile.read(), undefined, result.window)),
      s3rver: perMiB(selfTime(s3Profile.read(), undefined, result.window)),
    };
  } finally {
    workerProfile.remove();
    s3Profile.remove();
    tmp.remove();
  }
}

export interface ArchiveRow {
  bytes: number;
  archive: RunResult[];
  baseline: RunResult[];
  /** Diagnostic: the same archive into a stub S3 that discards the bytes (one run). */
  toSink: RunResult[];
  profile: ArchiveProfile;
}

export async function measureArchive(options: { sizes?: number[]; runs?: number } = {}): Promise<ArchiveRow[]> {
  const sizes = options.sizes ?? [100 * MiB, GiB];
  const runs = options.runs ?? 2;
  const upstream = await startSimulatedUpstream({ host: '127.0.0.1' });
  try {
    const rows: ArchiveRow[] = [];
    for (const bytes of sizes) {
      const url = await renderedVideo(upstream, bytes);
      const row: Omit<ArchiveRow, 'profile'> = { bytes, archive: [], baseline: [], toSink: [] };
      for (let run = 1; run <= runs; run++) {
        progress(`archive: ${label(bytes)} straight to a file (baseline), run ${run} of ${runs}`);
        row.baseline.push(await runOnce('file', url, bytes));
        progress(`archive: ${label(bytes)} through VideoStore.archive into s3rver, run ${run} of ${runs}`);
        row.archive.push(await runOnce('archive', url, bytes));
      }
      progress(`archive: ${label(bytes)} through VideoStore.archive into a discarding S3 stub (diagnostic)`);
      row.toSink.push(await runOnce('archive-to-sink', url, bytes));
      progress(`archive: ${label(bytes)} into s3rver with the worker and s3rver profiled (diagnostic)`);
      rows.push({ ...row, profile: await profileOnce(url, bytes) });
    }
    return rows;
  } finally {
    await upstream.close();
  }
}

const label = (bytes: number) => (bytes >= GiB ? `${fixed(bytes / GiB)} GiB` : `${fixed(bytes / MiB)} MiB`);
const mibps = (runs: readonly RunResult[]) => median(runs.map((r) => r.bytes / MiB / r.seconds));
const perMiB = (runs: readonly RunResult[], ms: (r: RunResult) => number) => median(runs.map((r) => ms(r) / (r.bytes / MiB)));
const growth = (r: WorkerResult) => (r.peakRss - r.startRss) / MiB;
const worst = (runs: readonly RunResult[], f: (r: RunResult) => number) => Math.max(...runs.map(f));

export function archiveReport(rows: readonly ArchiveRow[]): string {
  const growths = rows.map((r) => worst(r.archive, growth));
  const spread = Math.max(...growths) - Math.min(...growths);
  return [
    `### Archiving: simulated upstream (bench process) → VideoStore.archive (lib-storage, ${UPLOAD_PART_BYTES / MiB} MiB parts × ${UPLOAD_QUEUE_SIZE}; a child process per run) → s3rver (a child process)`,
    '',
    table(
      ['video', 'runs', 'MiB/s', 'baseline MiB/s', 'ratio', '≥ 60 %', 'peak RSS growth MiB, worst (each)', 'baseline MiB', '≤ 96 MiB', 'Buffers peak MiB', 'VmHWM MiB'],
      rows.map((r) => [
        label(r.bytes),
        String(r.archive.length),
        fixed(mibps(r.archive)),
        fixed(mibps(r.baseline)),
        `${fixed((mibps(r.archive) / mibps(r.baseline)) * 100)} %`,
        pass(mibps(r.archive) >= THROUGHPUT_TARGET * mibps(r.baseline)),
        `${fixed(worst(r.archive, growth), 1)} (${r.archive.map((x) => fixed(growth(x), 1)).join(' / ')})`,
        fixed(worst(r.baseline, growth), 1),
        pass(worst(r.archive, growth) * MiB <= RSS_TARGET),
        fixed(worst(r.archive, (x) => x.peakExternalGrowth) / MiB),
        fixed(worst(r.archive, (x) => x.vmHwm) / MiB),
      ]),
    ),
    '',
    '#### Where the archive\'s time goes: CPU ms per MiB moved, by process (median of runs), and the same archive into an S3 stub that discards the bytes',
    '',
    table(
      ['video', 'archive worker', 'baseline worker', 's3rver', 'upstream (archive)', 'upstream (baseline)', 'diagnostic: MiB/s into a discarding S3', 'its ratio', 'its worker CPU', 'its peak RSS growth MiB'],
      rows.map((r) => [
        label(r.bytes),
        fixed(perMiB(r.archive, (x) => x.cpuMs), 1),
        fixed(perMiB(r.baseline, (x) => x.cpuMs), 1),
        fixed(perMiB(r.archive, (x) => x.s3CpuMs), 1),
        fixed(perMiB(r.archive, (x) => x.upstreamCpuMs), 1),
        fixed(perMiB(r.baseline, (x) => x.upstreamCpuMs), 1),
        fixed(mibps(r.toSink)),
        `${fixed((mibps(r.toSink) / mibps(r.baseline)) * 100)} %`,
        fixed(perMiB(r.toSink, (x) => x.cpuMs), 1),
        fixed(worst(r.toSink, growth), 1),
      ]),
    ),
    '',
    ...rows.map((r) => {
      // Every process of the run shares the machine's cores: their CPU per MiB bounds the rate.
      const others = perMiB(r.archive, (x) => x.s3CpuMs) + perMiB(r.archive, (x) => x.upstreamCpuMs);
      const ceiling = (os.cpus().length * 1000) / (others + perMiB(r.baseline, (x) => x.cpuMs));
      return (
        `${label(r.bytes)}: s3rver and the upstream alone use ${fixed(others, 1)} ms of CPU per MiB; with ${os.cpus().length} cores, even a worker as cheap as the baseline's ` +
        `could move at most ${fixed(ceiling)} MiB/s through them (${fixed((ceiling / mibps(r.baseline)) * 100)} % of the baseline).`
      );
    }),
    '',
    rows.length > 1
      ? `Archive RSS growth (worst run) spread between sizes: ${fixed(spread, 1)} MiB (target ≤ 16 MiB: ${pass(spread * MiB <= RSS_SPREAD_TARGET)}).`
      : 'One size only (--quick): the spread between sizes is not measured.',
    'MiB/s: median of the runs. Peak RSS growth: highest `process.memoryUsage().rss` sampled every 20 ms during a run minus the value just before it, worst run shown (the target is a ceiling); ' +
      'Buffers: the same for external + array buffer memory (the JS heap grows by < 1 MiB); VmHWM: the kernel\'s peak RSS of the child, start-up included. ' +
      'Baseline: `pipeline(openGet(url).body, fs.createWriteStream(file))` from the same upstream. ' +
      'Diagnostic: the archive run again with s3rver replaced by a stub that discards the bytes (s3-sink-child.ts): what the worker alone achieves, and its memory when S3 keeps up.',
    '',
    '#### Where each process\'s CPU goes: self time per MiB moved, from `--cpu-prof` profiles of one more archive run (profiling slows it; read as shares)',
    '',
    ...rows.flatMap((r) => [profileTable(`${label(r.bytes)}`, r.profile), '']),
  ].join('\n');
}

function profileTable(size: string, profile: ArchiveProfile): string {
  const side = (totals: Map<string, number>) => topCategories(totals, 7).map(([k, ms]) => `${k} ${fixed(ms, 2)}`);
  const worker = side(profile.worker);
  const s3rver = side(profile.s3rver);
  return table(
    [`${size}: archive worker, ms/MiB (total ${fixed(busyMs(profile.worker), 2)})`, `s3rver, ms/MiB (total ${fixed(busyMs(profile.s3rver), 2)})`],
    Array.from({ length: Math.max(worker.length, s3rver.length) }, (_, i) => [worker[i] ?? '', s3rver[i] ?? '']),
  );
}
