import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { s3ClientFor } from '../lambdas/shared/aws/s3';
import { localPolicy, openGet } from '../lambdas/shared/outbound';
import { VideoStore } from '../lambdas/shared/videos';
import { profileClock } from './profile';

/**
 * One archive run in a process of its own, so its memory is the run's alone:
 * `node --import tsx bench/archive-worker.ts '<json WorkerJob>'` prints one JSON line.
 *
 * - `archive`: `VideoStore.archive` from the upstream URL into the (local) S3 bucket, with the
 *   gateway's S3 client for a local endpoint (`s3ClientFor`).
 * - `file`: the baseline, the same bytes from the same URL piped straight into a local file.
 *
 * RSS is sampled every 20 ms; the peak is also read from the kernel (VmHWM).
 */
export interface WorkerJob {
  mode: 'archive' | 'file';
  url: string;
  bytes: number;
  s3Endpoint?: string;
  bucket?: string;
  key?: string;
  outFile?: string;
}

export interface WorkerResult {
  mode: WorkerJob['mode'];
  bytes: number;
  seconds: number;
  startRss: number;
  peakRss: number;
  /** Peak of external + array buffer memory (Buffers live there) above its start value. */
  peakExternalGrowth: number;
  peakHeapGrowth: number;
  /** The kernel's high-water mark of this process's RSS, start-up included. */
  vmHwm: number;
  /** CPU time (user + system, all threads) this process spent on the run. */
  cpuMs: number;
  samples: number;
  sha256?: string;
  /** The run's span on the CPU profiles' clock (µs), to pick its samples out of a profile. */
  window: { from: number; to: number };
}

const SAMPLE_MS = 20;

function vmHwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function main() {
  const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
  let run: () => Promise<{ bytes: number; sha256?: string }>;
  if (job.mode === 'archive') {
    const s3 = s3ClientFor(job.s3Endpoint, { region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const videos = new VideoStore({
      s3,
      bucket: job.bucket!,
      maxBytes: 2 * 1024 ** 3,
      policy: localPolicy,
      timeoutMs: 15_000,
    });
    run = () => videos.archive(job.url, job.key!);
  } else {
    run = async () => {
      const { status, body } = await openGet(job.url, { policy: localPolicy, timeoutMs: 15_000 });
      if (status !== 200) throw new Error(`the upstream answered ${status}`);
      await pipeline(body, createWriteStream(job.outFile!));
      return { bytes: statSync(job.outFile!).size };
    };
  }

  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakExternal = start.external + start.arrayBuffers;
  let peakHeap = start.heapUsed;
  let samples = 0;
  const sample = () => {
    const m = process.memoryUsage();
    samples++;
    peakRss = Math.max(peakRss, m.rss);
    peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, SAMPLE_MS);
  const from = profileClock();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const outcome = await run();
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const to = profileClock();
  clearInterval(timer);
  sample();

  if (outcome.bytes !== job.bytes) throw new Error(`${job.mode} moved ${outcome.bytes} bytes, expected ${job.bytes}`);
  const result: WorkerResult = {
    mode: job.mode,
    bytes: outcome.bytes,
    seconds,
    startRss: start.rss,
    peakRss,
    peakExternalGrowth: peakExternal - (start.external + start.arrayBuffers),
    peakHeapGrowth: peakHeap - start.heapUsed,
    vmHwm: vmHwm(),
    cpuMs: (cpu.user + cpu.system) / 1000,
    samples,
    sha256: outcome.sha256,
    window: { from, to },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
