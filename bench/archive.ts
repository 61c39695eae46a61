import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startSimulatedUpstream, type SimulatedUpstream } from '../local/simulated-upstream';
import type { WorkerJob, WorkerResult } from './archive-worker';
import { GiB, MiB, benchDir, fixed, lastJson, pass, progress, projectRoot, runChild, table, tempDir } from './lib';

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
      if (task.videoBytes !== bytes) throw new Error(`asked for ${bytes} bytes, the upstream made ${task.videoBytes}`);
      return task.videoUrl;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the simulated upstream did not finish rendering');
}

/** s3rver in its own process (see s3rver-child.ts), holding its objects under `directory`. */
async function startS3(directory: string): Promise<{ endpoint: string; cpuMs(): number; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, 's3rver-child.ts'), directory, BUCKET], {
    cwd: projectRoot,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => String(line)),
    exited.then(([code]) => Promise.reject(new Error(`s3rver exited (${String(code)}) before it was ready`))),
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

async function runWorker(job: WorkerJob): Promise<WorkerResult> {
  const result = await runChild(process.execPath, ['--import', 'tsx', join(benchDir, 'archive-worker.ts'), JSON.stringify(job)], {
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

/** One run, in temp storage that is deleted afterwards (a 1 GiB video is 1 GiB on disk, or more while s3rver assembles it). */
async function runOnce(mode: WorkerJob['mode'], url: string, bytes: number): Promise<RunResult> {
  const tmp = tempDir(`archive-${mode}`);
  try {
    if (mode === 'file') {
      const cpu0 = process.cpuUsage();
      const result = await runWorker({ mode, url, bytes, outFile: join(tmp.path, 'video.mp4') });
      const cpu = process.cpuUsage(cpu0);
      return { ...result, upstreamCpuMs: (cpu.user + cpu.system) / 1000, s3CpuMs: 0 };
    }
    const s3 = await startS3(tmp.path);
    try {
      const key = `videos/bench-${bytes}.mp4`;
      const s3Cpu0 = s3.cpuMs();
      const cpu0 = process.cpuUsage();
      const result = await runWorker({ mode, url, bytes, s3Endpoint: s3.endpoint, bucket: BUCKET, key });
      const cpu = process.cpuUsage(cpu0);
      const s3CpuMs = s3.cpuMs() - s3Cpu0;
      const stored = await objectSize(s3.endpoint, key);
      if (stored !== bytes) throw new Error(`s3rver holds ${stored} bytes for ${key}, expected ${bytes}`);
      return { ...result, upstreamCpuMs: (cpu.user + cpu.system) / 1000, s3CpuMs };
    } finally {
      await s3.close();
    }
  } finally {
    tmp.remove();
  }
}

export interface ArchiveRow {
  bytes: number;
  archive: RunResult;
  baseline: RunResult;
}

export async function measureArchive(options: { sizes?: number[] } = {}): Promise<ArchiveRow[]> {
  const sizes = options.sizes ?? [100 * MiB, GiB];
  const upstream = await startSimulatedUpstream({ host: '127.0.0.1' });
  try {
    const rows: ArchiveRow[] = [];
    for (const bytes of sizes) {
      const url = await renderedVideo(upstream, bytes);
      progress(`archive: ${label(bytes)} straight to a file (baseline)`);
      const baseline = await runOnce('file', url, bytes);
      progress(`archive: ${label(bytes)} through VideoStore.archive into s3rver`);
      const archive = await runOnce('archive', url, bytes);
      rows.push({ bytes, archive, baseline });
    }
    return rows;
  } finally {
    await upstream.close();
  }
}

const label = (bytes: number) => (bytes >= GiB ? `${fixed(bytes / GiB)} GiB` : `${fixed(bytes / MiB)} MiB`);
const mibps = (r: WorkerResult) => r.bytes / MiB / r.seconds;
const perMiB = (r: WorkerResult, ms: number) => ms / (r.bytes / MiB);
const growth = (r: WorkerResult) => (r.peakRss - r.startRss) / MiB;

export function archiveReport(rows: readonly ArchiveRow[]): string {
  const growths = rows.map((r) => growth(r.archive));
  const spread = Math.max(...growths) - Math.min(...growths);
  return [
    '### Archiving: simulated upstream (bench process) → VideoStore.archive (lib-storage, 8 MiB parts × 4; a child process per run) → s3rver (a child process)',
    '',
    table(
      ['video', 'MiB/s', 'baseline MiB/s', 'ratio', '≥ 60 %', 'peak RSS growth MiB', 'baseline MiB', '≤ 96 MiB', 'Buffers peak MiB', 'heap peak MiB', 'VmHWM MiB'],
      rows.map((r) => [
        label(r.bytes),
        fixed(mibps(r.archive)),
        fixed(mibps(r.baseline)),
        `${fixed((mibps(r.archive) / mibps(r.baseline)) * 100)} %`,
        pass(mibps(r.archive) >= THROUGHPUT_TARGET * mibps(r.baseline)),
        fixed(growth(r.archive), 1),
        fixed(growth(r.baseline), 1),
        pass(growth(r.archive) * MiB <= RSS_TARGET),
        fixed(r.archive.peakExternalGrowth / MiB, 1),
        fixed(r.archive.peakHeapGrowth / MiB, 1),
        fixed(r.archive.vmHwm / MiB),
      ]),
    ),
    '',
    '#### CPU per MiB moved (ms), by process: where the archive\'s time goes on this machine',
    '',
    table(
      ['video', 'archive worker', 'baseline worker', 's3rver', 'upstream (archive)', 'upstream (baseline)'],
      rows.map((r) => [
        label(r.bytes),
        fixed(perMiB(r.archive, r.archive.cpuMs), 1),
        fixed(perMiB(r.baseline, r.baseline.cpuMs), 1),
        fixed(perMiB(r.archive, r.archive.s3CpuMs), 1),
        fixed(perMiB(r.archive, r.archive.upstreamCpuMs), 1),
        fixed(perMiB(r.baseline, r.baseline.upstreamCpuMs), 1),
      ]),
    ),
    '',
    rows.length > 1
      ? `Archive RSS growth spread between sizes: ${fixed(spread, 1)} MiB (target ≤ 16 MiB: ${pass(spread * MiB <= RSS_SPREAD_TARGET)}).`
      : 'One size only (--quick): the spread between sizes is not measured.',
    'Peak RSS growth: highest `process.memoryUsage().rss` sampled every 20 ms during the run minus the value just before it; Buffers/heap: the same for external + array buffers and for the JS heap; VmHWM: the kernel\'s peak RSS of the child, start-up included. Baseline: `pipeline(openGet(url).body, fs.createWriteStream(file))` from the same upstream.',
    '',
  ].join('\n');
}

