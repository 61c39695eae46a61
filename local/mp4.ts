import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * Videos of any size that are still real, playable MP4s: the small fixture (2 s of
 * H.264 + AAC, made once with ffmpeg) followed by a top-level `free` box. Players skip
 * `free` boxes, so the file plays as the fixture; the box payload starts with the task id
 * (every task's video, and so its sha256, is distinct) and is zeros after that.
 * Nothing is stored: bytes are produced chunk by chunk as a reader asks for them.
 */

const fixture = readFileSync(new URL('./assets/sample.mp4', import.meta.url));

/** The fixture's bytes; callers must not modify them. */
export function sampleVideo(): Buffer {
  return fixture;
}

export const CHUNK_BYTES = 64 * 1024;
const MAX_BOX32 = 0xffff_ffff;
const SMALL_HEADER = 8;
const LARGE_HEADER = 16;

export interface VideoSpec {
  taskId: string;
  /** Total length in bytes; at least `minimumVideoBytes(taskId)`, which is also the default. */
  bytes?: number;
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

export function minimumVideoBytes(taskId: string): number {
  return fixture.length + SMALL_HEADER + Buffer.byteLength(taskId, 'utf8');
}

/** The fixture, the `free` box header and the task id: everything that is not trailing zeros. */
function videoPrefix(spec: VideoSpec): { size: number; prefix: Buffer } {
  const id = Buffer.from(spec.taskId, 'utf8');
  const minimum = fixture.length + SMALL_HEADER + id.length;
  const size = spec.bytes ?? minimum;
  if (!Number.isSafeInteger(size) || size < minimum) {
    throw new RangeError(`video size must be an integer of at least ${minimum} bytes, got ${size}`);
  }
  const boxSize = size - fixture.length;
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
  return { size, prefix: Buffer.concat([fixture, header, id]) };
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
