/**
 * Reads what an MP4 (ISO/IEC 14496-12) says about itself while its bytes stream past: the
 * movie's duration and the video track's size and codec. Top-level boxes are walked by their
 * headers alone, so media data (`mdat`) is skipped without being held, wherever it sits; only
 * the movie box (`moov`, before or after the media) is kept, up to `MAX_MOOV_BYTES`, and each
 * fragment header (`moof`) of a fragmented file just long enough to add up its durations.
 */

export interface Mp4Facts {
  /** The movie header's duration over its timescale; for a fragmented file, its longest track's. */
  durationSeconds: number;
  /** The first video track's coded size, as its sample entry gives it (the track header's otherwise). */
  width: number;
  height: number;
  /** The sample entry's four-character code: avc1, avc3, hvc1, hev1, av01, vp09 … */
  codec: string;
}

export class Mp4Error extends Error {}

/** A real movie box is kilobytes (a sample table of a few entries per frame); a larger one is refused unread. */
export const MAX_MOOV_BYTES = 4 * 1024 * 1024;
/** Fragment headers hold one fragment's sample table: small. */
export const MAX_MOOF_BYTES = 1024 * 1024;

interface BoxHeader {
  type: string;
  headerBytes: number;
  /** Payload length; `undefined` for size 0, "up to the end of the file". */
  payloadBytes: number | undefined;
}

const printable = (type: string) => (/^[\x20-\x7e]{4}$/.test(type) ? type : JSON.stringify(type));

const impossible = (type: string, size: number | bigint, offset: number) =>
  new Mp4Error(`the video has a ${printable(type)} box of impossible size ${size} at byte ${offset}`);

/** Parses the box header at the start of `buf`, or returns `null` when `buf` does not hold all of it yet. */
function readHeader(buf: Buffer, offset: number): BoxHeader | null {
  if (buf.length < 8) return null;
  const size32 = buf.readUInt32BE(0);
  const type = buf.toString('latin1', 4, 8);
  if (size32 === 0) return { type, headerBytes: 8, payloadBytes: undefined };
  if (size32 !== 1) {
    if (size32 < 8) throw impossible(type, size32, offset);
    return { type, headerBytes: 8, payloadBytes: size32 - 8 };
  }
  // size 1: the real size follows as a 64-bit largesize (ISO/IEC 14496-12 4.2).
  if (buf.length < 16) return null;
  const large = buf.readBigUInt64BE(8);
  if (large < 16n || large > BigInt(Number.MAX_SAFE_INTEGER)) throw impossible(type, large, offset);
  return { type, headerBytes: 16, payloadBytes: Number(large) - 16 };
}

interface OpenBox {
  type: string;
  start: number;
  payloadStart: number;
  /** Payload bytes still to come; `undefined` when the box runs to the end of the file. */
  left: number | undefined;
  /** The payload so far, for the boxes that are read; `undefined` for those skipped. */
  kept: Buffer[] | undefined;
  keptBytes: number;
}

/**
 * Feed it every byte of the file, in order, with `push`; then `finish` gives the facts. Both
 * throw `Mp4Error` when the bytes cannot be a well-formed MP4. A chunk inside skipped media
 * costs a subtraction.
 */
export class Mp4Probe {
  private offset = 0;
  /** The start of a top-level box header that the last chunk cut in two. */
  private header = Buffer.alloc(0);
  private current: OpenBox | undefined;
  private movie: Movie | undefined;
  /** Payload bytes of all media boxes seen whole. */
  private mediaBytes = 0;
  /** A fragment header was read and its media box has not come yet. */
  private fragmentWithoutMedia = false;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const box = this.current;
      if (!box) {
        at += this.readTopHeader(chunk.subarray(at));
        continue;
      }
      const take = box.left === undefined ? chunk.length - at : Math.min(box.left, chunk.length - at);
      if (box.kept) {
        box.keptBytes += take;
        if (box.keptBytes > limitFor(box.type)) throw tooLarge(box.type);
        box.kept.push(Buffer.from(chunk.subarray(at, at + take))); // a copy: the caller's chunk may be reused
      }
      at += take;
      this.offset += take;
      if (box.left !== undefined) {
        box.left -= take;
        if (box.left === 0) this.close();
      }
    }
  }

  finish(): Mp4Facts {
    if (this.header.length) {
      throw new Mp4Error(`the video is cut off inside a box header at byte ${this.offset - this.header.length}`);
    }
    if (this.current?.left !== undefined) {
      const { type, start, left } = this.current;
      throw new Mp4Error(`the video is cut off: its ${printable(type)} box at byte ${start} lacks its last ${left} bytes`);
    }
    if (this.current) this.close();
    if (!this.movie) throw new Mp4Error('the video has no movie header (moov box)');
    // A file cut at a box boundary still has whole boxes: the sample tables say how much media it should have.
    const media = this.movie.media();
    if (this.movie.fragmented && this.movie.fragments === 0 && media.bytes === 0) {
      throw new Mp4Error('the video is cut off: its movie header announces fragments and none follow');
    }
    if (this.fragmentWithoutMedia) throw new Mp4Error('the video is cut off after a movie fragment header, before its media');
    if (media.bytes > this.mediaBytes || media.lastChunkAt >= this.offset) {
      throw new Mp4Error(`the video is cut off: its movie header describes ${media.bytes} bytes of media, the file holds ${this.mediaBytes}`);
    }
    return this.movie.facts();
  }

  /** Consumes up to one top-level box header from `bytes`; returns how many bytes it took. */
  private readTopHeader(bytes: Buffer): number {
    const start = this.offset - this.header.length;
    const piece = bytes.subarray(0, 16 - this.header.length);
    const candidate = this.header.length ? Buffer.concat([this.header, piece]) : piece;
    const box = readHeader(candidate, start);
    if (!box) {
      this.header = Buffer.from(candidate);
      this.offset += piece.length;
      return piece.length;
    }
    const taken = box.headerBytes - this.header.length;
    this.header = Buffer.alloc(0);
    this.offset += taken;
    this.open(box, start);
    return taken;
  }

  private open(box: BoxHeader, start: number) {
    const read = box.type === 'moov' || box.type === 'moof';
    if (box.type === 'moov' && this.movie) throw new Mp4Error('the video has two movie headers (moov boxes)');
    if (box.type === 'moof' && !this.movie) throw new Mp4Error(`the video has a movie fragment (moof box) at byte ${start} before its movie header`);
    if (read && box.payloadBytes !== undefined && box.payloadBytes > limitFor(box.type)) throw tooLarge(box.type);
    if (box.type === 'mdat') this.fragmentWithoutMedia = false;
    this.current = { type: box.type, start, payloadStart: this.offset, left: box.payloadBytes, kept: read ? [] : undefined, keptBytes: 0 };
    if (box.payloadBytes === 0) this.close();
  }

  private close() {
    const box = this.current!;
    this.current = undefined;
    if (box.type === 'mdat') this.mediaBytes += this.offset - box.payloadStart;
    if (!box.kept) return;
    const payload = Buffer.concat(box.kept);
    if (box.type === 'moov') this.movie = new Movie(payload);
    else {
      this.movie!.addFragment(payload);
      this.fragmentWithoutMedia = true;
    }
  }
}

const limitFor = (type: string) => (type === 'moov' ? MAX_MOOV_BYTES : MAX_MOOF_BYTES);

const tooLarge = (type: string) =>
  type === 'moov'
    ? new Mp4Error(`the video's movie header (moov box) is over the ${MAX_MOOV_BYTES}-byte limit`)
    : new Mp4Error(`the video has a movie fragment header (moof box) over the ${MAX_MOOF_BYTES}-byte limit`);

/** A box inside the movie or a fragment header: its type and payload. */
interface Box {
  type: string;
  body: Buffer;
}

const malformed = (what: string) => new Mp4Error(`the video's movie header is malformed: ${what}`);

/** The boxes directly inside `buf`; a child that overruns its parent is malformed. */
function children(buf: Buffer, parent: string): Box[] {
  const boxes: Box[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 8) throw malformed(`${buf.length - at} stray bytes at the end of its ${parent} box`);
    let header: BoxHeader | null;
    try {
      header = readHeader(buf.subarray(at), at);
    } catch {
      throw malformed(`a box of impossible size inside its ${parent} box`);
    }
    if (!header) throw malformed(`a box header cut off inside its ${parent} box`);
    const end = header.payloadBytes === undefined ? buf.length : at + header.headerBytes + header.payloadBytes;
    if (end > buf.length) throw malformed(`its ${printable(header.type)} box overruns its ${parent} box`);
    boxes.push({ type: header.type, body: buf.subarray(at + header.headerBytes, end) });
    at = end;
  }
  return boxes;
}

const child = (boxes: Box[], type: string) => boxes.find((b) => b.type === type);

/** Reads fields of a full box, refusing to read past its end. */
function fields(box: Box) {
  const { body, type } = box;
  const need = (at: number, length: number) => {
    if (at + length > body.length) throw malformed(`its ${type} box is ${body.length} bytes, too short`);
  };
  return {
    version: () => (need(0, 1), body[0]!),
    flags: () => (need(0, 4), body.readUInt32BE(0) & 0xff_ffff),
    u16: (at: number) => (need(at, 2), body.readUInt16BE(at)),
    u32: (at: number) => (need(at, 4), body.readUInt32BE(at)),
    u64: (at: number) => (need(at, 8), Number(body.readBigUInt64BE(at))),
    fourcc: (at: number) => (need(at, 4), body.toString('latin1', at, at + 4)),
  };
}

interface Track {
  id: number;
  handler: string;
  timescale: number;
  width: number;
  height: number;
  codec: string | undefined;
  /** For fragmented files: the track's ticks so far (its own tables', then the fragments'), and the default from `trex`. */
  fragmentTicks: number;
  defaultSampleDuration: number;
  /** From the sample tables (empty in a fragmented file): bytes of all samples, offset of the last chunk. */
  sampleBytes: number;
  lastChunkAt: number;
}

/** The movie box, read once it is whole; fragment headers add to its tracks' durations. */
class Movie {
  private readonly timescale: number;
  private readonly duration: number;
  private readonly tracks: Track[];
  readonly fragmented: boolean;
  fragments = 0;

  constructor(moov: Buffer) {
    const boxes = children(moov, 'moov');
    const mvhd = child(boxes, 'mvhd');
    if (!mvhd) throw new Mp4Error('the video has no movie header (no mvhd box in its moov box)');
    const f = fields(mvhd);
    const v1 = f.version() === 1;
    this.timescale = f.u32(v1 ? 20 : 12);
    this.duration = v1 ? f.u64(24) : f.u32(16);
    if (this.timescale === 0) throw malformed('its mvhd box gives a timescale of 0');
    this.tracks = boxes.filter((b) => b.type === 'trak').map(readTrack);
    const mvex = child(boxes, 'mvex');
    this.fragmented = mvex !== undefined;
    for (const trex of children(mvex?.body ?? Buffer.alloc(0), 'mvex').filter((b) => b.type === 'trex')) {
      const t = fields(trex);
      const track = this.tracks.find((k) => k.id === t.u32(4));
      if (track) track.defaultSampleDuration = t.u32(12);
    }
    const mehd = child(children(mvex?.body ?? Buffer.alloc(0), 'mvex'), 'mehd');
    if (mehd && this.duration === 0) {
      const m = fields(mehd);
      this.duration = m.version() === 1 ? m.u64(4) : m.u32(4);
    }
  }

  addFragment(moof: Buffer) {
    this.fragments++;
    for (const traf of children(moof, 'moof').filter((b) => b.type === 'traf')) {
      const boxes = children(traf.body, 'traf');
      const tfhd = child(boxes, 'tfhd');
      if (!tfhd) throw malformed('a track fragment without its tfhd box');
      const h = fields(tfhd);
      const track = this.tracks.find((k) => k.id === h.u32(4));
      if (!track) continue;
      // tfhd optional fields, in order: base data offset (8 bytes), description index, duration.
      const flags = h.flags();
      let at = 8 + (flags & 0x1 ? 8 : 0) + (flags & 0x2 ? 4 : 0);
      const defaultDuration = flags & 0x8 ? h.u32(at) : track.defaultSampleDuration;
      let ticks = 0;
      for (const trun of boxes.filter((b) => b.type === 'trun')) {
        const r = fields(trun);
        const rflags = r.flags();
        const count = r.u32(4);
        if (!(rflags & 0x100)) {
          ticks += count * defaultDuration;
          continue;
        }
        // trun: data offset and first-sample flags, then per sample the fields its flags name.
        at = 8 + (rflags & 0x1 ? 4 : 0) + (rflags & 0x4 ? 4 : 0);
        const stride = 4 * [0x100, 0x200, 0x400, 0x800].filter((bit) => rflags & bit).length;
        if (at + count * stride > trun.body.length) throw malformed(`its trun box is too short for ${count} samples`);
        for (let i = 0; i < count; i++) ticks += r.u32(at + i * stride);
      }
      const tfdt = child(boxes, 'tfdt');
      const base = tfdt ? (fields(tfdt).version() === 1 ? fields(tfdt).u64(4) : fields(tfdt).u32(4)) : track.fragmentTicks;
      track.fragmentTicks = Math.max(track.fragmentTicks, base + ticks);
    }
  }

  /** What the sample tables describe: total sample bytes and the offset of the last chunk. */
  media(): { bytes: number; lastChunkAt: number } {
    return {
      bytes: this.tracks.reduce((sum, t) => sum + t.sampleBytes, 0),
      lastChunkAt: Math.max(0, ...this.tracks.map((t) => t.lastChunkAt)),
    };
  }

  facts(): Mp4Facts {
    const video = this.tracks.find((t) => t.handler === 'vide');
    if (!video) throw new Mp4Error('the video has no video track');
    if (!video.codec) throw malformed('its video track has no sample description');
    let seconds = this.duration / this.timescale;
    if (this.fragmented && this.fragments > 0) {
      // The movie header may count only the samples it holds itself; the fragments add theirs.
      seconds = Math.max(seconds, ...this.tracks.filter((t) => t.timescale > 0).map((t) => t.fragmentTicks / t.timescale));
    }
    if (!(seconds > 0) || this.duration === 0xffff_ffff) throw new Mp4Error('the video does not say how long it is (no duration in its movie header)');
    return { durationSeconds: seconds, width: video.width, height: video.height, codec: video.codec };
  }
}

function readTrack(trak: Box): Track {
  const boxes = children(trak.body, 'trak');
  const tkhd = child(boxes, 'tkhd');
  if (!tkhd) throw malformed('a track without its tkhd box');
  const t = fields(tkhd);
  const v1 = t.version() === 1;
  // Width and height are 16.16 fixed point after the matrix: byte 76 (version 0) or 88 (version 1).
  const track: Track = {
    id: t.u32(v1 ? 20 : 12),
    handler: '',
    timescale: 0,
    width: t.u32(v1 ? 88 : 76) >>> 16,
    height: t.u32(v1 ? 92 : 80) >>> 16,
    codec: undefined,
    fragmentTicks: 0,
    defaultSampleDuration: 0,
    sampleBytes: 0,
    lastChunkAt: 0,
  };
  const mdia = children(child(boxes, 'mdia')?.body ?? Buffer.alloc(0), 'mdia');
  const hdlr = child(mdia, 'hdlr');
  if (hdlr) track.handler = fields(hdlr).fourcc(8);
  const mdhd = child(mdia, 'mdhd');
  if (mdhd) {
    const m = fields(mdhd);
    const v1 = m.version() === 1;
    track.timescale = m.u32(v1 ? 20 : 12);
    // Samples described in the movie box come before any fragment's.
    track.fragmentTicks = v1 ? m.u64(24) : m.u32(16);
  }
  const minf = children(child(mdia, 'minf')?.body ?? Buffer.alloc(0), 'minf');
  const stbl = children(child(minf, 'stbl')?.body ?? Buffer.alloc(0), 'stbl');
  readSampleExtent(stbl, track);
  if (track.handler !== 'vide') return track;
  const stsd = child(stbl, 'stsd');
  if (!stsd || fields(stsd).u32(4) === 0) return track;
  // The first sample entry follows the entry count; a VisualSampleEntry has width and height at bytes 24 and 26 of its payload.
  const [entry] = children(stsd.body.subarray(8), 'stsd');
  if (!entry) return track;
  track.codec = entry.type;
  const e = fields(entry);
  if (e.u16(24) > 0 && e.u16(26) > 0) {
    track.width = e.u16(24);
    track.height = e.u16(26);
  }
  if (entry.type === 'encv') {
    // An encrypted entry names the real codec in sinf/frma, after the 78-byte VisualSampleEntry fields.
    const sinf = child(children(entry.body.subarray(78), 'encv'), 'sinf');
    const frma = sinf && child(children(sinf.body, 'sinf'), 'frma');
    if (frma) track.codec = fields(frma).fourcc(0);
  }
  return track;
}

/** Sample sizes (stsz, or compact stz2) and chunk offsets (stco, or 64-bit co64). */
function readSampleExtent(stbl: Box[], track: Track) {
  const stsz = child(stbl, 'stsz');
  if (stsz) {
    const z = fields(stsz);
    const fixed = z.u32(4);
    const count = z.u32(8);
    if (fixed) track.sampleBytes = fixed * count;
    else {
      if (12 + count * 4 > stsz.body.length) throw malformed(`its stsz box is too short for ${count} samples`);
      for (let i = 0; i < count; i++) track.sampleBytes += stsz.body.readUInt32BE(12 + i * 4);
    }
  }
  const stco = child(stbl, 'stco');
  const co64 = child(stbl, 'co64');
  const offsets = stco ?? co64;
  if (offsets) {
    const width = stco ? 4 : 8;
    const count = fields(offsets).u32(4);
    if (8 + count * width > offsets.body.length) throw malformed(`its ${offsets.type} box is too short for ${count} chunks`);
    for (let i = 0; i < count; i++) {
      const at = 8 + i * width;
      const offset = stco ? offsets.body.readUInt32BE(at) : Number(offsets.body.readBigUInt64BE(at));
      track.lastChunkAt = Math.max(track.lastChunkAt, offset);
    }
  }
}
