import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  UploadPartCopyCommand,
  type GetObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { bedrockOutputPrefix, parseS3Uri } from './bedrock-output';
import { logger } from './logger';
import type { VideoFacts } from './task-store';
import { ArchiveError, VideoInspector, type ArchiveOptions } from './videos';

/** S3's limit for one CopyObject; above it the copy goes part by part. */
export const SINGLE_COPY_MAX_BYTES = 5 * 1024 ** 3;
/** Parts of a multipart copy (S3 allows 5 MiB to 5 GiB each, 10,000 parts). */
export const COPY_PART_BYTES = 512 * 1024 ** 2;

export interface VideoCopyOptions {
  s3: S3Client;
  /** The gateway's bucket: the only one a copy may come from or go to. */
  bucket: string;
  maxBytes: number;
  singleCopyMaxBytes?: number;
  copyPartBytes?: number;
}

/**
 * Archive a video that an upstream wrote into our own bucket (Bedrock, under `bedrock/`):
 * read it once through the same inspector the download path uses (an MP4 `ftyp`, the size
 * cap, the whole length, sha256), then copy it server-side to `key` (CopyObject, or
 * UploadPartCopy above 5 GiB) on condition that it is still the object that was read, then
 * delete the original. Nothing is written before the checks pass, so `videos/` (and its
 * ObjectCreated event) never sees a file that is not a video.
 *
 * `beforeStore` runs with the facts once the checks pass, right before the copy is made.
 *
 * Resumable: should an earlier attempt have copied and deleted the original before it could
 * record the task, the copy already at `key` is checked the same way and its facts returned.
 */
export async function copyVideo(o: VideoCopyOptions, sourceUri: string, key: string, options: Pick<ArchiveOptions, 'beforeStore'> = {}): Promise<VideoFacts> {
  const source = parseS3Uri(sourceUri);
  if (!source || source.bucket !== o.bucket || !source.key.startsWith(bedrockOutputPrefix) || source.key.includes('..'))
    throw new ArchiveError(`the upstream reported its video at ${sourceUri}, outside the gateway's ${bedrockOutputPrefix} prefix`);

  const original = await open(o, source.key);
  if (!original) {
    const copied = await open(o, key);
    if (!copied) throw new ArchiveError(`the upstream's video is not in the bucket (${sourceUri})`);
    logger.info('video copy resumed: the original is gone and the copy is in place', { key });
    const resumed = await inspect(o, copied, key);
    await options.beforeStore?.(resumed);
    return resumed;
  }
  const facts = await inspect(o, original, key);
  await options.beforeStore?.(facts);
  const etag = original.ETag!;
  try {
    if (facts.bytes > (o.singleCopyMaxBytes ?? SINGLE_COPY_MAX_BYTES)) await copyInParts(o, source.key, key, facts.bytes, etag);
    else
      await o.s3.send(
        new CopyObjectCommand({
          Bucket: o.bucket,
          Key: key,
          CopySource: copySource(o.bucket, source.key),
          CopySourceIfMatch: etag,
          MetadataDirective: 'REPLACE',
          ContentType: 'video/mp4',
        }),
      );
  } catch (error) {
    throw new ArchiveError(`the server-side copy of ${sourceUri} failed: ${(error as Error).name}: ${(error as Error).message}`);
  }
  await o.s3.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: source.key }));
  return facts;
}

async function open(o: VideoCopyOptions, key: string): Promise<GetObjectCommandOutput | undefined> {
  try {
    return await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
  } catch (error) {
    if ((error as Error).name === 'NoSuchKey') return undefined;
    throw new ArchiveError(`could not read s3://${o.bucket}/${key}: ${(error as Error).name}: ${(error as Error).message}`);
  }
}

/** Read the object once through the inspector, keeping only what it measures. */
async function inspect(o: VideoCopyOptions, object: GetObjectCommandOutput, key: string): Promise<VideoFacts> {
  const body = object.Body as NodeJS.ReadableStream;
  const declared = object.ContentLength;
  if (declared !== undefined && declared > o.maxBytes) {
    (body as unknown as { destroy(): void }).destroy();
    throw new ArchiveError(`the video is ${declared} bytes, over the ${o.maxBytes}-byte cap`);
  }
  let problem: ArchiveError | undefined;
  const inspector = new VideoInspector(o.maxBytes, declared, (p) => (problem ??= p));
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  try {
    await pipeline(body, inspector, discard);
  } catch (error) {
    throw problem ?? new ArchiveError((error as Error).message);
  }
  return { key, bytes: inspector.bytes, sha256: inspector.digest(), contentType: 'video/mp4', ...inspector.measured };
}

async function copyInParts(o: VideoCopyOptions, sourceKey: string, key: string, bytes: number, etag: string): Promise<void> {
  const partBytes = o.copyPartBytes ?? COPY_PART_BYTES;
  const { UploadId } = await o.s3.send(new CreateMultipartUploadCommand({ Bucket: o.bucket, Key: key, ContentType: 'video/mp4' }));
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let start = 0, n = 1; start < bytes; start += partBytes, n++) {
      const end = Math.min(bytes, start + partBytes) - 1;
      const out = await o.s3.send(
        new UploadPartCopyCommand({
          Bucket: o.bucket,
          Key: key,
          UploadId,
          PartNumber: n,
          CopySource: copySource(o.bucket, sourceKey),
          CopySourceIfMatch: etag,
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ ETag: out.CopyPartResult!.ETag!, PartNumber: n });
    }
    await o.s3.send(new CompleteMultipartUploadCommand({ Bucket: o.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    // The bucket's lifecycle rule removes the parts should this abort fail too.
    await o.s3.send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: key, UploadId })).catch(() => undefined);
    throw error;
  }
}

const copySource = (bucket: string, key: string) => `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
