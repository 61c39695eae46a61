import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Mp4Probe } from '../../lambdas/shared/mp4-probe';
import { CHUNK_BYTES, minimumVideoBytes, requestedVideo, sampleVideo, videoSha256, videoStream, type GrownVideo, type VideoSpec } from '../../local/mp4';

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

/** What the gateway's own probe measures in the video, fed the bytes in small pieces as the archive does. */
function measured(spec: VideoSpec) {
  const video = videoStream(spec);
  const probe = new Mp4Probe();
  const bytes = video.slice(0, Math.min(video.size, 4 * CHUNK_BYTES) - 1);
  for (let at = 0; at < bytes.length; at += 1000) probe.push(bytes.subarray(at, at + 1000));
  if (video.size > bytes.length) probe.push(Buffer.alloc(video.size - bytes.length));
  return probe.finish();
}

describe('simulated MP4 videos', () => {
  it('last as long as asked and have the picture asked for, as the gateway measures them', () => {
    expect(measured({ taskId: 't', seconds: 10, width: 320, height: 180 })).toEqual({ durationSeconds: 10, width: 320, height: 180, codec: 'avc1' });
    expect(measured({ taskId: 't', seconds: 25, width: 180, height: 320 })).toEqual({ durationSeconds: 25, width: 180, height: 320, codec: 'avc1' });
    expect(measured({ taskId: 't', seconds: 2.5, width: 720, height: 1280 })).toEqual({ durationSeconds: 2.5, width: 720, height: 1280, codec: 'avc1' });
    expect(measured({ taskId: 't', seconds: 1, width: 1792, height: 1024, bytes: 300_000 })).toMatchObject({ durationSeconds: 1, width: 1792, height: 1024 });
    expect(measured({ taskId: 't' })).toEqual({ durationSeconds: 5, width: 320, height: 180, codec: 'avc1' });
  });

  it('stay small: a keyframe a second, a byte a macroblock', () => {
    expect(minimumVideoBytes({ taskId: 't', seconds: 25, width: 320, height: 180 })).toBeLessThan(10 * 1024);
    expect(minimumVideoBytes({ taskId: 't', seconds: 12, width: 720, height: 1280 })).toBeLessThan(64 * 1024);
  });

  it('take the duration and picture from what each dialect sends', () => {
    expect(requestedVideo({ seconds: 10, aspectRatio: '16:9' })).toEqual({ seconds: 10, width: 320, height: 180 });
    expect(requestedVideo({ seconds: '8', size: '720x1280' })).toEqual({ seconds: 8, width: 720, height: 1280 });
    expect(requestedVideo({ seconds: '5s', aspectRatio: '9:16' })).toEqual({ seconds: 5, width: 180, height: 320 });
    expect(requestedVideo({ seconds: 5, aspectRatio: '21:9' })).toEqual({ seconds: 5, width: 448, height: 192 });
    expect(requestedVideo({ seconds: 5, aspectRatio: '1:1' })).toEqual({ seconds: 5, width: 240, height: 240 });
    expect(requestedVideo({ seconds: 'soon', aspectRatio: '5:4' })).toEqual({ seconds: 5, width: 320, height: 180 });
    expect(requestedVideo({})).toEqual({ seconds: 5, width: 320, height: 180 });
  });

  it('start with an ftyp box and keep the moov before the media', () => {
    const boxes = topLevelBoxes(videoStream({ taskId: 't', seconds: 15 })).map((b) => b.type);
    expect(boxes).toEqual(['ftyp', 'moov', 'mdat', 'free']);
  });

  it('by default are the movie plus a free box holding just the task id', async () => {
    const video = videoStream({ taskId: 'sim_abc' });
    expect(video.size).toBe(sampleVideo().length + 8 + 7);
    expect(video.size).toBe(minimumVideoBytes({ taskId: 'sim_abc' }));
    const { bytes } = await collect(video.stream());
    expect(bytes.length).toBe(video.size);
    expect(bytes.subarray(0, sampleVideo().length).equals(sampleVideo())).toBe(true);
    const last = topLevelBoxes(video).at(-1)!;
    expect(last).toEqual({ type: 'free', start: sampleVideo().length, size: 15, headerSize: 8 });
    expect(bytes.subarray(last.start + 8).toString('utf8')).toBe('sim_abc');
  });

  it('grow to exactly the requested size, streamed in chunks of at most 64 KiB', async () => {
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

  it('differ for every task, with a sha256 computed without streaming', async () => {
    const a = await collect(videoStream({ taskId: 'a', bytes: 300_000 }).stream());
    const b = await collect(videoStream({ taskId: 'b', bytes: 300_000 }).stream());
    expect(sha256(a.bytes)).not.toBe(sha256(b.bytes));
    expect(videoSha256({ taskId: 'a', bytes: 300_000 })).toBe(sha256(a.bytes));
    const spec = { taskId: 'b', seconds: 15, width: 180, height: 320 };
    expect(videoSha256(spec)).toBe(sha256((await collect(videoStream(spec).stream())).bytes));
  });

  it('use a 64-bit largesize free box above 4 GiB, without producing the bytes up front', async () => {
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

  it('switch to largesize exactly when the box no longer fits 32 bits', () => {
    const movie = sampleVideo().length;
    const fits = topLevelBoxes(videoStream({ taskId: 'x', bytes: movie + 0xffff_ffff })).at(-1)!;
    const over = topLevelBoxes(videoStream({ taskId: 'x', bytes: movie + 0x1_0000_0000 })).at(-1)!;
    expect(fits).toMatchObject({ size: 0xffff_ffff, headerSize: 8 });
    expect(over).toMatchObject({ size: 0x1_0000_0000, headerSize: 16 });
  });

  it('stream any inclusive byte range with the same bytes as the whole', async () => {
    const video = videoStream({ taskId: 'range', bytes: 200_000 });
    const whole = (await collect(video.stream())).bytes;
    for (const [start, end] of [[0, 0], [17_000, 18_000], [100, 150_000], [199_990, 199_999]] as const) {
      const part = (await collect(video.stream({ start, end }))).bytes;
      expect(part.equals(whole.subarray(start, end + 1))).toBe(true);
      expect(video.slice(start, end).equals(part)).toBe(true);
    }
  });

  it('refuse sizes too small to hold the movie and the task id, and impossible lengths or pictures', () => {
    expect(() => videoStream({ taskId: 'abc', bytes: minimumVideoBytes({ taskId: 'abc' }) - 1 })).toThrow(RangeError);
    expect(() => videoStream({ taskId: 'abc', bytes: 1.5e6 + 0.5 })).toThrow(RangeError);
    expect(() => videoStream({ taskId: 'abc', seconds: 0 })).toThrow(RangeError);
    expect(() => videoStream({ taskId: 'abc', width: 15, height: 16 })).toThrow(RangeError);
    expect(() => videoStream({ taskId: 'abc', width: 8192, height: 8192 })).toThrow(RangeError);
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
    it(`accepts ${label} video as H.264 of 5 seconds`, () => {
      const path = writeVideo(`${label.replace(/\W/g, '')}.mp4`, videoStream({ taskId: 'probe', bytes }));
      const out = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=size,duration:stream=codec_name', '-of', 'json', path], {
        encoding: 'utf8',
      });
      expect(out.status).toBe(0);
      expect(out.stderr).toBe('');
      const probe = JSON.parse(out.stdout) as { streams: { codec_name: string }[]; format: { size: string; duration: string } };
      expect(probe.streams.map((s) => s.codec_name)).toEqual(['h264']);
      expect(Number(probe.format.size)).toBe(bytes ?? minimumVideoBytes({ taskId: 'probe' }));
      expect(Number(probe.format.duration)).toBeCloseTo(5, 1);
    });
  }
});
