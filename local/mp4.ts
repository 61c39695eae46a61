import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { PROFILE_BASELINE, PROFILE_COMPATIBILITY, greyPicture } from './h264-frame';

/**
 * The videos every simulator renders: real, playable MP4s of exactly the duration and size
 * a job asked for (H.264, one grey IDR frame a second, `h264-frame.ts`), made in memory in
 * microseconds, followed by a top-level `free` box. Players skip `free` boxes; its payload
 * starts with the task id (every task's video, and so its sha256, is distinct) and is zeros
 * after that, up to the size a test wants. Nothing is stored: bytes are produced chunk by
 * chunk as a reader asks for them.
 */

export const CHUNK_BYTES = 64 * 1024;
const MAX_BOX32 = 0xffff_ffff;
const SMALL_HEADER = 8;
const LARGE_HEADER = 16;
const TIMESCALE = 1000;

export const DEFAULT_SECONDS = 5;
export const DEFAULT_WIDTH = 320;
export const DEFAULT_HEIGHT = 180;

/** What a job's video looks like: its length, its picture, its size in bytes. */
export interface VideoShape {
  seconds: number;
  width: number;
  height: number;
  bytes: number;
}

export interface VideoSpec {
  taskId: string;
  /** Duration; default `DEFAULT_SECONDS`. */
  seconds?: number;
  /** Picture size; default 320x180. */
  width?: number;
  height?: number;
  /** Total length in bytes; at least `minimumVideoBytes(spec)`, which is also the default. */
  bytes?: number;
}

/** Small pictures of each aspect ratio a catalog may name: cheap to make, measured exactly. */
const PICTURES: Record<string, { width: number; height: number }> = {
  '16:9': { width: 320, height: 180 },
  '9:16': { width: 180, height: 320 },
  '1:1': { width: 240, height: 240 },
  '4:3': { width: 320, height: 240 },
  '3:4': { width: 240, height: 320 },
  '21:9': { width: 448, height: 192 },
  '9:21': { width: 192, height: 448 },
};

/**
 * The duration and picture a simulator renders for a job, from what its dialect asked:
 * `seconds` as a number or a string (`"8"`, `"5s"`), and a `WxH` size or an aspect ratio.
 * What is missing or unreadable takes the default, as a real provider would.
 */
export function requestedVideo(asked: { seconds?: unknown; aspectRatio?: unknown; size?: unknown }): Omit<VideoShape, 'bytes'> {
  const secondsText = typeof asked.seconds === 'number' ? String(asked.seconds) : typeof asked.seconds === 'string' ? asked.seconds : '';
  const seconds = /^\d+(\.\d+)?s?$/.test(secondsText.trim()) ? Number.parseFloat(secondsText) : NaN;
  const sized = typeof asked.size === 'string' ? /^(\d{2,5})x(\d{2,5})$/.exec(asked.size) : null;
  const picture = sized
    ? { width: Number(sized[1]) & ~1, height: Number(sized[2]) & ~1 }
    : (PICTURES[typeof asked.aspectRatio === 'string' ? asked.aspectRatio : ''] ?? { width: DEFAULT_WIDTH, height: DEFAULT_HEIGHT });
  return { seconds: seconds > 0 && seconds <= 3600 ? seconds : DEFAULT_SECONDS, ...picture };
}

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xff_ffff), 0);
  return box(type, vf, ...payload);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

function u16s(...values: number[]): Buffer {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2));
  return b;
}

const UNITY_MATRIX = u32s(0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000);

/** ftyp, moov and mdat of a `seconds`-long video: a keyframe at every whole second, the last one shorter. */
function buildMovie(seconds: number, width: number, height: number): Buffer {
  const { level, sps, pps, idr } = greyPicture(width, height);
  const duration = Math.round(seconds * TIMESCALE);
  const frames = Math.ceil(duration / TIMESCALE);
  const lastDelta = duration - (frames - 1) * TIMESCALE;
  const samples = Array.from({ length: frames }, (_, i) => {
    const unit = idr[i % 2]!;
    return Buffer.concat([u32s(unit.length), unit]);
  });

  const avcC = box(
    'avcC',
    Buffer.from([1, PROFILE_BASELINE, PROFILE_COMPATIBILITY, level, 0xff, 0xe1]),
    u16s(sps.length),
    sps,
    Buffer.from([1]),
    u16s(pps.length),
    pps,
  );
  const avc1 = box(
    'avc1',
    Buffer.alloc(6),
    u16s(1), // data_reference_index
    Buffer.alloc(16),
    u16s(width, height),
    u32s(0x0048_0000, 0x0048_0000, 0), // 72 dpi, 72 dpi, reserved
    u16s(1), // frame_count
    Buffer.alloc(32), // compressorname
    u16s(0x0018, 0xffff), // depth, pre_defined -1
    avcC,
  );
  const stts = lastDelta === TIMESCALE || frames === 1
    ? fullBox('stts', 0, 0, u32s(1, frames, frames === 1 ? lastDelta : TIMESCALE))
    : fullBox('stts', 0, 0, u32s(2, frames - 1, TIMESCALE, 1, lastDelta));
  const stsz = fullBox('stsz', 0, 0, u32s(0, frames, ...samples.map((s) => s.length)));
  const stbl = (chunkOffset: number) =>
    box(
      'stbl',
      fullBox('stsd', 0, 0, u32s(1), avc1),
      stts,
      fullBox('stsc', 0, 0, u32s(1, 1, frames, 1)),
      stsz,
      fullBox('stco', 0, 0, u32s(1, chunkOffset)),
    );
  const moov = (chunkOffset: number) =>
    box(
      'moov',
      fullBox('mvhd', 0, 0, u32s(0, 0, TIMESCALE, duration, 0x0001_0000), u16s(0x0100, 0), u32s(0, 0), UNITY_MATRIX, Buffer.alloc(24), u32s(2)),
      box(
        'trak',
        fullBox('tkhd', 0, 3, u32s(0, 0, 1, 0, duration, 0, 0), u16s(0, 0, 0, 0), UNITY_MATRIX, u32s(width * 0x1_0000, height * 0x1_0000)),
        box(
          'mdia',
          fullBox('mdhd', 0, 0, u32s(0, 0, TIMESCALE, duration), u16s(0x55c4, 0)), // language "und"
          fullBox('hdlr', 0, 0, u32s(0), Buffer.from('vide', 'latin1'), Buffer.alloc(12), Buffer.from('VideoHandler\0', 'latin1')),
          box(
            'minf',
            fullBox('vmhd', 0, 1, u16s(0, 0, 0, 0)),
            box('dinf', fullBox('dref', 0, 0, u32s(1), fullBox('url ', 0, 1))),
            stbl(chunkOffset),
          ),
        ),
      ),
    );
  const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), u32s(0x200), Buffer.from('isomiso2avc1mp41', 'latin1'));
  // The moov's size does not depend on the offset it holds, so one dry run places the media.
  const mediaStart = ftyp.length + moov(0).length + SMALL_HEADER;
  return Buffer.concat([ftyp, moov(mediaStart), box('mdat', ...samples)]);
}

/** Movies already made, by shape: a simulator makes many videos of the same few shapes. */
const movies = new Map<string, Buffer>();
const MAX_MOVIES = 32;

function movie(spec: VideoSpec): Buffer {
  const seconds = spec.seconds ?? DEFAULT_SECONDS;
  const width = spec.width ?? DEFAULT_WIDTH;
  const height = spec.height ?? DEFAULT_HEIGHT;
  if (!(seconds > 0 && seconds <= 3600)) throw new RangeError(`video length must be over 0 and at most 3600 seconds, got ${seconds}`);
  const key = `${seconds}/${width}x${height}`;
  let made = movies.get(key);
  if (!made) {
    made = buildMovie(seconds, width, height);
    if (movies.size >= MAX_MOVIES) movies.delete(movies.keys().next().value!);
    movies.set(key, made);
  }
  return made;
}

/** The default video's bytes (5 s, 320x180), without a `free` box; callers must not modify them. */
export function sampleVideo(): Buffer {
  return movie({ taskId: '' });
}

/** Inclusive byte range, as in HTTP `Range` and `fs.createReadStream`. */
export interface ByteRange {
  start?: number;
  end?: number;
}

export interface GrownVideo {
  size: number;
  /** Bytes `start..end` (inclusive; whole file by default), produced lazily in 64 KiB chunks. */
  stream(range?: ByteRange): Readable;
  /** Bytes `start..end` (inclusive) as one buffer; for headers and tails, not whole large files. */
  slice(start: number, end: number): Buffer;
}

export function minimumVideoBytes(spec: Omit<VideoSpec, 'bytes'>): number {
  return movie(spec).length + SMALL_HEADER + Buffer.byteLength(spec.taskId, 'utf8');
}

/** The movie, the `free` box header and the task id: everything that is not trailing zeros. */
function videoPrefix(spec: VideoSpec): { size: number; prefix: Buffer } {
  const made = movie(spec);
  const id = Buffer.from(spec.taskId, 'utf8');
  const minimum = made.length + SMALL_HEADER + id.length;
  const size = spec.bytes ?? minimum;
  if (!Number.isSafeInteger(size) || size < minimum) {
    throw new RangeError(`video size must be an integer of at least ${minimum} bytes, got ${size}`);
  }
  const boxSize = size - made.length;
  let header: Buffer;
  if (boxSize <= MAX_BOX32) {
    header = Buffer.alloc(SMALL_HEADER);
    header.writeUInt32BE(boxSize, 0);
    header.write('free', 4, 'latin1');
  } else {
    // size field 1 means "the real size follows as a 64-bit largesize" (ISO/IEC 14496-12 4.2).
    header = Buffer.alloc(LARGE_HEADER);
    header.writeUInt32BE(1, 0);
    header.write('free', 4, 'latin1');
    header.writeBigUInt64BE(BigInt(boxSize), 8);
  }
  return { size, prefix: Buffer.concat([made, header, id]) };
}
export function videoStream(spec: VideoSpec): GrownVideo {
  const { size, prefix } = videoPrefix(spec);

  const slice = (start: number, end: number): Buffer => {
    const length = end - start + 1;
    const out = Buffer.alloc(length);
    if (start < prefix.length) prefix.copy(out, 0, start, Math.min(prefix.length, end + 1));
    return out;
  };

  const stream = (range: ByteRange = {}): Readable => {
    const start = range.start ?? 0;
    const end = Math.min(range.end ?? size - 1, size - 1);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end + 1) {
      throw new RangeError(`bad byte range ${start}-${end} for a ${size}-byte video`);
    }
    let position = start;
    return new Readable({
      highWaterMark: CHUNK_BYTES,
      read() {
        if (position > end) {
          this.push(null);
          return;
        }
        const last = Math.min(end, position + CHUNK_BYTES - 1);
        const chunk = slice(position, last);
        position = last + 1;
        this.push(chunk);
      },
    });
  };

  return { size, stream, slice };
}

/** The sha256 (hex) of `videoStream(spec)`'s bytes, computed without a server or a stream. */
export function videoSha256(spec: VideoSpec): string {
  const { size, prefix } = videoPrefix(spec);
  const hash = createHash('sha256').update(prefix);
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = size - prefix.length; left > 0; left -= zeros.length) {
    hash.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
  }
  return hash.digest('hex');
}
