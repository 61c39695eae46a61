import { createHash } from 'node:crypto';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { fetchImage } from './images';
import { logger } from './logger';
import { Mp4Error, Mp4Probe, type Mp4Facts } from './mp4-probe';
import { s3 } from './aws/s3';
import type { Config } from './config';
import { openGet, policyFor, type OutboundPolicy } from './outbound';
import type { VideoFacts } from './task-store';
import { copyVideo } from './video-copy';

/** Multipart upload shape: memory held is about part size × queue size, whatever the video's size. */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;
export const UPLOAD_QUEUE_SIZE = 2;
/** A thumbnail or spritesheet is read whole: OpenAI's are tens of kilobytes. */
export const MAX_RENDITION_BYTES = 8 * 1024 * 1024;

const videoTypes = /^(video\/[\w.+-]+|application\/octet-stream|binary\/octet-stream)$/i;

export class ArchiveError extends Error {}

export interface VideoStoreOptions {
  s3: S3Client;
  bucket: string;
  maxBytes: number;
  policy: OutboundPolicy;
  timeoutMs: number;
}

export interface ArchiveOptions {
  /**
   * Called once every byte has passed the checks, right before the object appears in the
   * bucket (before CompleteMultipartUpload, or the single PutObject of a small video). A throw
   * abandons the upload, and is what `archive` throws.
   */
  beforeStore?: (video: VideoFacts) => Promise<void>;
  /**
   * Sent with the download (an upstream's key for its content endpoint). The caller gives them
   * only for a URL on the upstream's own host; a redirect to another host drops them (`openGet`).
   */
  headers?: Record<string, string>;
}

/** Writes videos into the bucket (the archive worker's half; links are `VideoLinks`). */
export class VideoStore {
  constructor(private readonly o: VideoStoreOptions) {}

  /**
   * Stream the video at `sourceUrl` into the bucket under `key`, never holding it whole.
   * It must look like a video (content type and an MP4 `ftyp` box), stay under the size cap
   * and arrive complete; otherwise the multipart upload is abandoned and no object appears.
   * A failure reports its first cause, from whichever side it came: the download or the bucket.
   */
  async archive(sourceUrl: string, key: string, options: ArchiveOptions = {}): Promise<VideoFacts> {
    const response = await openGet(sourceUrl, { policy: this.o.policy, timeoutMs: this.o.timeoutMs, headers: options.headers });
    const { status, headers, body } = response;
    const contentType = String(headers['content-type'] ?? 'application/octet-stream').split(';')[0]!.trim();
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    const refuse = (message: string): never => {
      body.destroy();
      throw new ArchiveError(message);
    };
    if (status !== 200) refuse(`the upstream video URL answered ${status}`);
    if (!videoTypes.test(contentType)) refuse(`the upstream sent ${contentType}, not a video`);
    if (declared !== undefined && declared > this.o.maxBytes)
      refuse(`the video is ${declared} bytes, over the ${this.o.maxBytes}-byte cap`);

    // When one side fails, the other fails after it ("aborted", or the upload's own abort
    // failing): the first failure noted is the cause.
    let cause: Error | undefined;
    const note = (error: Error) => {
      cause ??= error;
    };
    const inspector = new VideoInspector(this.o.maxBytes, declared, note);
    pipeline(body, inspector, () => undefined); // errors reach the upload through the inspector
    const facts = (): VideoFacts => ({ key, bytes: inspector.bytes, sha256: inspector.digest(), contentType: 'video/mp4', ...inspector.measured });
    const upload = new Upload({
      client: watchedClient(this.o.s3, {
        beforeStore: async () => {
          try {
            await options.beforeStore?.(facts());
          } catch (error) {
            note(error as Error);
            throw error;
          }
        },
        refused: (what, error) => note(new ArchiveError(`the bucket refused ${what}: ${describeS3Error(error)}`)),
      }),
      params: { Bucket: this.o.bucket, Key: key, Body: inspector, ContentType: 'video/mp4' },
      partSize: UPLOAD_PART_BYTES,
      queueSize: UPLOAD_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      body.destroy();
      const first = cause ?? new ArchiveError((error as Error).message);
      logger.warn('video archive failed', { key, cause: first.message, uploadError: (error as Error).message });
      throw first;
    }
    return facts();
  }

  /**
   * A still image the upstream offers beside the video (a thumbnail, a spritesheet), fetched
   * whole under the same outbound rules and `headers` as the video, at most
   * `MAX_RENDITION_BYTES`, kept only if it is a PNG, JPEG or WebP by its bytes; stored under
   * `baseKey` and its type's extension, which is answered.
   */
  async storeImage(sourceUrl: string, baseKey: string, headers?: Record<string, string>): Promise<string> {
    const { timeoutMs, policy } = this.o;
    const { bytes, kind } = await fetchImage(sourceUrl, { policy, timeoutMs, signal: AbortSignal.timeout(timeoutMs), headers, maxBytes: MAX_RENDITION_BYTES });
    const key = `${baseKey}.${kind.ext}`;
    await this.o.s3.send(new PutObjectCommand({ Bucket: this.o.bucket, Key: key, Body: bytes, ContentType: kind.contentType }));
    return key;
  }

  /**
   * Archive a video an upstream wrote into our own bucket (`s3://…`, Bedrock) by server-side
   * copy, with the same checks and `beforeStore` (see `copyVideo`). Imported statically: a dynamic
   * import would make esbuild wrap the S3 client lazily and keep every one of its commands.
   */
  async copy(sourceUri: string, key: string, options: Pick<ArchiveOptions, 'beforeStore'> = {}): Promise<VideoFacts> {
    return copyVideo({ s3: this.o.s3, bucket: this.o.bucket, maxBytes: this.o.maxBytes }, sourceUri, key, options);
  }

  /**
   * The video an earlier attempt stored under `expected.key`, when the object is there and
   * complete: its size is the recorded one (and so is its SHA-256, where the bucket keeps a
   * full-object SHA-256). Undefined when there is no such object, or it is not that video.
   */
  async findStored(expected: VideoFacts): Promise<VideoFacts | undefined> {
    let head: HeadObjectCommandOutput;
    try {
      head = await this.o.s3.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: expected.key, ChecksumMode: 'ENABLED' }));
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
    if (head.ContentLength !== expected.bytes) return undefined;
    if (head.ChecksumSHA256 && head.ChecksumType === 'FULL_OBJECT' && Buffer.from(head.ChecksumSHA256, 'base64').toString('hex') !== expected.sha256)
      return undefined;
    return expected;
  }
}

/** What each upload call is, in an error message. */
function uploadStep(command: unknown): string | undefined {
  if (command instanceof UploadPartCommand) return `part ${command.input.PartNumber}`;
  if (command instanceof CreateMultipartUploadCommand) return 'the start of the upload';
  if (command instanceof CompleteMultipartUploadCommand) return 'the completion of the upload';
  if (command instanceof PutObjectCommand) return 'the object';
  return undefined;
}

const describeS3Error = (error: unknown) => {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return `${status ? `${status} ` : ''}${e.name ?? 'Error'}: ${e.message ?? ''}`.trim();
};

/**
 * The S3 client as one upload sees it: `beforeStore` runs right before the call that makes
 * the object appear, and each refusal of an upload call is reported with what it refused.
 */
function watchedClient(client: S3Client, watch: { beforeStore(): Promise<void>; refused(what: string, error: unknown): void }): S3Client {
  return new Proxy(client, {
    get(target, property) {
      if (property !== 'send') return Reflect.get(target, property, target);
      return async (command: Parameters<S3Client['send']>[0], ...rest: unknown[]) => {
        if (command instanceof CompleteMultipartUploadCommand || command instanceof PutObjectCommand) await watch.beforeStore();
        try {
          return await (target.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
        } catch (error) {
          const what = uploadStep(command);
          if (what) watch.refused(what, error);
          throw error;
        }
      };
    },
  });
}

/**
 * Passes bytes through while checking the MP4 signature, the size cap and the declared length,
 * hashing, and reading the movie's duration, size and codec from its boxes.
 */
export class VideoInspector extends Transform {
  bytes = 0;
  /** Set once the last byte has passed and the boxes made a whole movie. */
  measured: Mp4Facts | undefined;
  private readonly probe = new Mp4Probe();
  /** What was wrong with the bytes, once something was. */
  problem: ArchiveError | undefined;
  private readonly hash = createHash('sha256');
  private head = Buffer.alloc(0);
  private sha256: string | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly declared: number | undefined,
    /** Told of the problem the moment it is found (the archive keeps the first failure of either side). */
    private readonly report: (problem: ArchiveError) => void = () => undefined,
  ) {
    super();
  }

  digest(): string {
    this.sha256 ??= this.hash.digest('hex');
    return this.sha256;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return done(this.fail(`the video is over the ${this.maxBytes}-byte cap`));
    if (this.head.length < 8) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 8 - this.head.length)]);
      if (this.head.length === 8 && this.head.toString('latin1', 4, 8) !== 'ftyp')
        return done(this.fail('the upstream file is not an MP4 video (no ftyp box)'));
    }
    this.hash.update(chunk);
    try {
      this.probe.push(chunk);
    } catch (error) {
      return done(this.failWith(error));
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback) {
    if (this.head.length < 8) return done(this.fail('the upstream file is too short to be a video'));
    if (this.declared !== undefined && this.bytes !== this.declared)
      return done(this.fail(`the download ended after ${this.bytes} of ${this.declared} bytes`));
    try {
      this.measured = this.probe.finish();
    } catch (error) {
      return done(this.failWith(error));
    }
    done();
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void) {
    if (error && !this.problem) this.fail(`the download broke off after ${this.bytes} bytes: ${error.message}`);
    done(error);
  }

  private failWith(error: unknown) {
    if (error instanceof Mp4Error) return this.fail(error.message);
    throw error;
  }

  private fail(message: string) {
    this.problem = new ArchiveError(message);
    this.report(this.problem);
    return this.problem;
  }
}

/** The archive worker's writer, from configuration. */
export const videoArchiver = (c: Config) =>
  new VideoStore({
    s3: s3(),
    bucket: c.BUCKET_NAME,
    maxBytes: c.MAX_VIDEO_BYTES,
    policy: policyFor(c.LOCAL_MODE),
    timeoutMs: c.UPSTREAM_TIMEOUT_MS,
  });
