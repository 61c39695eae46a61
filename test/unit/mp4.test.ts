import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK_BYTES, minimumVideoBytes, sampleVideo, videoSha256, videoStream, type GrownVideo } from '../../local/mp4';

const FIVE_GIB = 5 * 2 ** 30;

interface Box {
  type: string;
  start: number;
  size: number;
  headerSize: number;
}

/** Walks top-level MP4 boxes reading only their headers, so it works on huge lazy videos. */
function topLevelBoxes(video: GrownVideo): Box[] {
  const boxes: Box[] = [];
  let start = 0;
  while (start < video.size) {
    const header = video.slice(start, Math.min(start + 15, video.size - 1));
    const size32 = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    const size = size32 === 1 ? Number(header.readBigUInt64BE(8)) : size32;
    expect(size).toBeGreaterThanOrEqual(8);
    boxes.push({ type, start, size, headerSize: size32 === 1 ? 16 : 8 });
    start += size;
  }
  expect(start).toBe(video.size);
  return boxes;
}

async function collect(stream: Readable): Promise<{ bytes: Buffer; largestChunk: number }> {
  const chunks: Buffer[] = [];
  let largestChunk = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    largestChunk = Math.max(largestChunk, chunk.length);
  }
  return { bytes: Buffer.concat(chunks), largestChunk };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('grown MP4 videos', () => {
  it('starts with the real fixture: an ftyp box first and the moov before the media', () => {
    const boxes = topLevelBoxes(videoStream({ taskId: 't' })).map((b) => b.type);
    expect(boxes[0]).toBe('ftyp');
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    expect(sampleVideo().length).toBeLessThan(60 * 1024);
  });

  it('by default is the fixture plus a free box holding just the task id', async () => {
    const video = videoStream({ taskId: 'sim_abc' });
    expect(video.size).toBe(sampleVideo().length + 8 + 7);
    expect(video.size).toBe(minimumVideoBytes('sim_abc'));
    const { bytes } = await collect(video.stream());
    expect(bytes.length).toBe(video.size);
    expect(bytes.subarray(0, sampleVideo().length).equals(sampleVideo())).toBe(true);
    const last = topLevelBoxes(video).at(-1)!;
    expect(last).toEqual({ type: 'free', start: sampleVideo().length, size: 15, headerSize: 8 });
    expect(bytes.subarray(last.start + 8).toString('utf8')).toBe('sim_abc');
  });

  it('grows to exactly the requested size, streamed in chunks of at most 64 KiB', async () => {
    const video = videoStream({ taskId: 'task-1', bytes: 1_000_003 });
    const { bytes, largestChunk } = await collect(video.stream());
    expect(bytes.length).toBe(1_000_003);
    expect(largestChunk).toBeLessThanOrEqual(CHUNK_BYTES);
    const free = topLevelBoxes(video).at(-1)!;
    expect(free).toMatchObject({ type: 'free', size: 1_000_003 - sampleVideo().length, headerSize: 8 });
    const payload = bytes.subarray(free.start + 8);
    expect(payload.subarray(0, 6).toString('utf8')).toBe('task-1');
    expect(payload.subarray(6).every((b) => b === 0)).toBe(true);
  });

  it('gives every task a different video, whose sha256 can be computed without streaming it', async () => {
    const a = await collect(videoStream({ taskId: 'a', bytes: 300_000 }).stream());
    const b = await collect(videoStream({ taskId: 'b', bytes: 300_000 }).stream());
    expect(sha256(a.bytes)).not.toBe(sha256(b.bytes));
    expect(videoSha256({ taskId: 'a', bytes: 300_000 })).toBe(sha256(a.bytes));
    expect(videoSha256({ taskId: 'b' })).toBe(sha256((await collect(videoStream({ taskId: 'b' }).stream())).bytes));
  });

  it('uses a 64-bit largesize free box above 4 GiB, without producing the bytes up front', async () => {
    const video = videoStream({ taskId: 'big', bytes: FIVE_GIB });
    expect(video.size).toBe(FIVE_GIB);
    const boxes = topLevelBoxes(video);
    expect(boxes[0]!.type).toBe('ftyp');
    expect(boxes.at(-1)).toEqual({ type: 'free', start: sampleVideo().length, size: FIVE_GIB - sampleVideo().length, headerSize: 16 });
    expect(video.slice(sampleVideo().length + 16, sampleVideo().length + 18).toString()).toBe('big');
    const tail = await collect(video.stream({ start: FIVE_GIB - 100 }));
    expect(tail.bytes.length).toBe(100);
    expect(tail.bytes.every((b) => b === 0)).toBe(true);
  });

  it('switches to largesize exactly when the box no longer fits 32 bits', () => {
    const fixture = sampleVideo().length;
    const fits = topLevelBoxes(videoStream({ taskId: 'x', bytes: fixture + 0xffff_ffff })).at(-1)!;
    const over = topLevelBoxes(videoStream({ taskId: 'x', bytes: fixture + 0x1_0000_0000 })).at(-1)!;
    expect(fits).toMatchObject({ size: 0xffff_ffff, headerSize: 8 });
    expect(over).toMatchObject({ size: 0x1_0000_0000, headerSize: 16 });
  });

  it('streams any inclusive byte range with the same bytes as the whole', async () => {
    const video = videoStream({ taskId: 'range', bytes: 200_000 });
    const whole = (await collect(video.stream())).bytes;
    for (const [start, end] of [[0, 0], [17_000, 18_000], [100, 150_000], [199_990, 199_999]] as const) {
      const part = (await collect(video.stream({ start, end }))).bytes;
      expect(part.equals(whole.subarray(start, end + 1))).toBe(true);
      expect(video.slice(start, end).equals(part)).toBe(true);
    }
  });

  it('refuses sizes too small to hold the fixture and the task id', () => {
    expect(() => videoStream({ taskId: 'abc', bytes: minimumVideoBytes('abc') - 1 })).toThrow(RangeError);
    expect(() => videoStream({ taskId: 'abc', bytes: 1.5e6 + 0.5 })).toThrow(RangeError);
  });
});

const hasFfprobe = !spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).error;

describe.skipIf(!hasFfprobe)('grown MP4 videos, checked by ffprobe when it is installed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mp4-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the non-zero head and extends the file with zeros (sparse), like the real bytes. */
  function writeVideo(name: string, video: GrownVideo): string {
    const path = join(dir, name);
    writeFileSync(path, video.slice(0, Math.min(video.size, CHUNK_BYTES) - 1));
    truncateSync(path, video.size);
    return path;
  }

  for (const [label, bytes] of [['the smallest', undefined], ['a 5 GiB', FIVE_GIB]] as const) {
    it(`accepts ${label} video as H.264 + AAC of 2 seconds`, () => {
      const path = writeVideo(`${label.replace(/\W/g, '')}.mp4`, videoStream({ taskId: 'probe', bytes }));
      const out = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=size,duration:stream=codec_name', '-of', 'json', path], {
        encoding: 'utf8',
      });
      expect(out.status).toBe(0);
      expect(out.stderr).toBe('');
      const probe = JSON.parse(out.stdout) as { streams: { codec_name: string }[]; format: { size: string; duration: string } };
      expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(Number(probe.format.size)).toBe(bytes ?? minimumVideoBytes('probe'));
      expect(Number(probe.format.duration)).toBeCloseTo(2, 1);
    });
  }
});
