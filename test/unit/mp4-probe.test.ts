import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MOOV_BYTES, Mp4Error, Mp4Probe, type Mp4Facts } from '../../lambdas/shared/mp4-probe';

/** Fixtures made by `test/fixtures/mp4/make.ts` with ffmpeg; ffprobe's readings of them beside. */
const fixtureDir = new URL('../fixtures/mp4/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', fixtureDir), 'utf8')) as Record<
  string,
  { bytes: number; duration_seconds: number; width: number; height: number; codec: string }
>;
const fixture = (name: string) => readFileSync(new URL(`${name}.mp4`, fixtureDir));

function probe(chunks: Iterable<Buffer>): Mp4Facts {
  const p = new Mp4Probe();
  for (const chunk of chunks) p.push(chunk);
  return p.finish();
}

function* inChunks(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** The error a probe of these bytes ends with (it must be an Mp4Error). */
function failure(bytes: Buffer): string {
  try {
    probe([bytes]);
  } catch (error) {
    if (error instanceof Mp4Error) return error.message;
    throw error;
  }
  throw new Error('the probe accepted it');
}

function box(type: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + payload.length, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, payload]);
}

interface TopBox {
  type: string;
  start: number;
  end: number;
}

function topBoxes(bytes: Buffer): TopBox[] {
  const boxes: TopBox[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = bytes.readUInt32BE(at);
    boxes.push({ type: bytes.toString('latin1', at + 4, at + 8), start: at, end: at + size });
    at += size;
  }
  return boxes;
}

const part = (bytes: Buffer, type: string) => {
  const b = topBoxes(bytes).find((x) => x.type === type)!;
  return bytes.subarray(b.start, b.end);
};

const ftyp = part(fixture('h264-320x180-2s-faststart'), 'ftyp');
const moov = part(fixture('h264-320x180-2s-faststart'), 'moov');

describe('the MP4 probe against ffmpeg-made videos', () => {
  const names = Object.keys(expected);

  it.each(names)('reads %s as ffprobe does', (name) => {
    const bytes = fixture(name);
    const want = expected[name]!;
    expect(bytes.length).toBe(want.bytes);
    const facts = probe([bytes]);
    expect(facts).toEqual({ durationSeconds: expect.any(Number), width: want.width, height: want.height, codec: want.codec });
    expect(Math.abs(facts.durationSeconds - want.duration_seconds)).toBeLessThan(0.0005);
  });

  it('covers H.264, HEVC and AV1, moov before and after the media, and fragmented files', () => {
    expect(new Set(names.map((n) => expected[n]!.codec))).toEqual(new Set(['avc1', 'hvc1', 'hev1', 'av01']));
    const layouts = names.map((n) => topBoxes(fixture(n)).map((b) => b.type).filter((t) => ['moov', 'mdat', 'moof'].includes(t)).slice(0, 2).join(','));
    expect(new Set(layouts)).toEqual(new Set(['moov,mdat', 'mdat,moov', 'moov,moof']));
    expect(names.every((n) => expected[n]!.bytes < 10_000)).toBe(true);
  });

  it('reads the same whatever the chunk boundaries, down to one byte at a time', () => {
    for (const name of names) {
      const whole = probe([fixture(name)]);
      expect(probe(inChunks(fixture(name), 1))).toEqual(whole);
      expect(probe(inChunks(fixture(name), 7))).toEqual(whole);
    }
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 40 }), (name, sizes) => {
        const bytes = fixture(name);
        const chunks: Buffer[] = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const size = sizes[i % sizes.length]!;
          chunks.push(bytes.subarray(at, at + size));
          at += size;
        }
        expect(probe(chunks)).toEqual(probe([bytes]));
      }),
    );
  });

  it('skips a 5 GiB media box (64-bit size) before the movie header without holding it', () => {
    const mdatHeader = Buffer.alloc(16);
    mdatHeader.writeUInt32BE(1, 0);
    mdatHeader.write('mdat', 4, 'latin1');
    const mdatBytes = 5 * 2 ** 30;
    mdatHeader.writeBigUInt64BE(BigInt(mdatBytes), 8);
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    const p = new Mp4Probe();
    p.push(ftyp);
    p.push(mdatHeader);
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    for (let left = mdatBytes - 16; left > 0; left -= zeros.length) p.push(left >= zeros.length ? zeros : zeros.subarray(0, left));
    const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    p.push(moov);
    expect(p.finish()).toMatchObject({ width: 320, height: 180, codec: 'avc1' });
    expect(heapAfter - heapBefore).toBeLessThan(16 * 1024 * 1024);
  });

  it('accepts a last box that runs to the end of the file (size 0)', () => {
    const faststart = Buffer.from(fixture('h264-320x180-2s-faststart'));
    faststart.writeUInt32BE(0, topBoxes(faststart).find((b) => b.type === 'mdat')!.start);
    expect(probe([faststart])).toEqual(probe([fixture('h264-320x180-2s-faststart')]));
    const tail = Buffer.from(fixture('h264-180x320-5s-tail'));
    tail.writeUInt32BE(0, topBoxes(tail).find((b) => b.type === 'moov')!.start);
    expect(probe(inChunks(tail, 100))).toEqual(probe([fixture('h264-180x320-5s-tail')]));
  });
});

describe('the MP4 probe refusing what is not a whole MP4', () => {
  it('fails every truncation of a video, with the moov before or after the media', () => {
    for (const name of ['h264-320x180-2s-faststart', 'h264-180x320-5s-tail', 'h264-320x180-5s-fragmented']) {
      const bytes = fixture(name);
      const boxes = topBoxes(bytes);
      // Cut before a fragment (or its optional random-access index, mfra), a fragmented file is a whole, shorter movie.
      const wholeAt = new Set(boxes.filter((b, i) => i > 2 && (b.type === 'moof' || b.type === 'mfra')).map((b) => b.start));
      const messages = new Set<string>();
      for (let cut = 0; cut < bytes.length; cut++) {
        if (wholeAt.has(cut)) expect(probe([bytes.subarray(0, cut)]).durationSeconds).toBeLessThanOrEqual(expected[name]!.duration_seconds);
        else messages.add(failure(bytes.subarray(0, cut)).replace(/\d+/g, 'N'));
      }
      expect([...messages]).toEqual(
        expect.arrayContaining(['the video is cut off inside a box header at byte N', 'the video is cut off: its mdat box at byte N lacks its last N bytes']),
      );
      for (const m of messages) expect(m).toMatch(/^the video (is cut off|has no movie header \(moov box\))/);
    }
    const fragmented = fixture('h264-320x180-5s-fragmented');
    const second = topBoxes(fragmented).filter((b) => b.type === 'moof')[1]!;
    expect(probe([fragmented.subarray(0, second.start)]).durationSeconds).toBe(1);
  });

  it('fails a file cut at a box boundary, whose movie header points past its end', () => {
    const bytes = fixture('h264-320x180-2s-faststart');
    const mdat = topBoxes(bytes).find((b) => b.type === 'mdat')!;
    expect(failure(bytes.subarray(0, mdat.start))).toMatch(/^the video is cut off: its movie header describes \d+ bytes of media, the file holds 0$/);
    const fragmented = fixture('h264-320x180-5s-fragmented');
    const media = topBoxes(fragmented).find((b) => b.type === 'mdat')!;
    expect(failure(fragmented.subarray(0, media.start))).toBe('the video is cut off after a movie fragment header, before its media');
  });

  it('names what is missing or cut off', () => {
    const tail = fixture('h264-180x320-5s-tail');
    const moovBox = topBoxes(tail).find((b) => b.type === 'moov')!;
    expect(failure(tail.subarray(0, moovBox.start))).toBe('the video has no movie header (moov box)');
    expect(failure(tail.subarray(0, moovBox.start + 100))).toBe(
      `the video is cut off: its moov box at byte ${moovBox.start} lacks its last ${moovBox.end - moovBox.start - 100} bytes`,
    );
    expect(failure(Buffer.concat([ftyp, box('mdat', Buffer.alloc(10))]))).toBe('the video has no movie header (moov box)');
    expect(failure(Buffer.alloc(0))).toBe('the video has no movie header (moov box)');
    expect(failure(fixture('audio-only-2s'))).toBe('the video has no video track');
  });

  it('refuses impossible box sizes', () => {
    const small = Buffer.from([0, 0, 0, 3, ...Buffer.from('mdat')]);
    expect(failure(Buffer.concat([ftyp, small]))).toBe(`the video has a mdat box of impossible size 3 at byte ${ftyp.length}`);
    const large = Buffer.alloc(16);
    large.writeUInt32BE(1, 0);
    large.write('mdat', 4, 'latin1');
    large.writeBigUInt64BE(2n ** 60n, 8);
    expect(failure(Buffer.concat([ftyp, large]))).toBe(`the video has a mdat box of impossible size ${2n ** 60n} at byte ${ftyp.length}`);
    large.writeBigUInt64BE(9n, 8);
    expect(failure(Buffer.concat([ftyp, large]))).toBe(`the video has a mdat box of impossible size 9 at byte ${ftyp.length}`);
    const overrun = Buffer.from(moov);
    overrun.writeUInt32BE(0x7fff_0000, 8); // the mvhd claims more than its moov holds
    expect(failure(Buffer.concat([ftyp, overrun]))).toBe("the video's movie header is malformed: its mvhd box overruns its moov box");
  });

  it('refuses a movie header over the limit as soon as its size is known, and one that grows past it', () => {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(MAX_MOOV_BYTES + 9, 0);
    header.write('moov', 4, 'latin1');
    const p = new Mp4Probe();
    p.push(ftyp);
    expect(() => p.push(header)).toThrow(`the video's movie header (moov box) is over the ${MAX_MOOV_BYTES}-byte limit`);
    const open = new Mp4Probe();
    open.push(Buffer.concat([ftyp, Buffer.from([0, 0, 0, 0]), Buffer.from('moov')]));
    expect(() => {
      for (let i = 0; i <= MAX_MOOV_BYTES / 65536; i++) open.push(Buffer.alloc(65536));
    }).toThrow(`the video's movie header (moov box) is over the ${MAX_MOOV_BYTES}-byte limit`);
  });

  it('refuses two movie headers, a zero timescale, no duration and a movie without its mvhd', () => {
    const bytes = fixture('h264-180x320-5s-tail');
    const at = topBoxes(bytes).find((b) => b.type === 'moov')!.start;
    const patched = (edit: (copy: Buffer) => void) => {
      const copy = Buffer.from(bytes);
      edit(copy);
      return copy;
    };
    expect(failure(Buffer.concat([bytes, bytes.subarray(at)]))).toBe('the video has two movie headers (moov boxes)');
    expect(bytes.toString('latin1', at + 12, at + 16)).toBe('mvhd');
    expect(failure(patched((b) => b.write('xxxx', at + 12, 'latin1')))).toBe('the video has no movie header (no mvhd box in its moov box)');
    // mvhd version 0: version and flags, two times, then the timescale and the duration.
    expect(failure(patched((b) => b.writeUInt32BE(0, at + 16 + 12)))).toBe("the video's movie header is malformed: its mvhd box gives a timescale of 0");
    expect(failure(patched((b) => b.writeUInt32BE(0, at + 16 + 16)))).toBe('the video does not say how long it is (no duration in its movie header)');
  });

  it('fails garbage with an Mp4Error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (bytes, withFtyp) => {
        const input = withFtyp ? Buffer.concat([ftyp, Buffer.from(bytes)]) : Buffer.from(bytes);
        expect(failure(input)).toMatch(/^the video /);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads a damaged movie header as facts or an Mp4Error, never a crash', () => {
    const bytes = fixture('h264-180x320-5s-tail');
    const moovBox = topBoxes(bytes).find((b) => b.type === 'moov')!;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: moovBox.start + 8, max: moovBox.end - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const damaged = Buffer.from(bytes);
        for (const [at, value] of edits) damaged[at] = value;
        try {
          const facts = probe([damaged]);
          expect(facts.durationSeconds).toBeGreaterThan(0);
        } catch (error) {
          expect(error).toBeInstanceOf(Mp4Error);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
