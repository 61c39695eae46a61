import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyVideo } from '../../lambdas/shared/video-copy';
import { sampleVideo, videoSha256, videoStream } from '../../local/mp4';
import { startEmbeddedS3, type EmbeddedS3 } from '../support/bedrock-stack';

let s3: EmbeddedS3;

beforeAll(async () => {
  s3 = await startEmbeddedS3();
});
afterAll(() => s3.close());

const put = (key: string, body: Buffer) => s3.s3.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
const options = (maxBytes = 1024 ** 3) => ({ s3: s3.s3, bucket: s3.bucket, maxBytes });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('archiving a video Bedrock wrote into the bucket (server-side copy)', () => {
  it('copies it to videos/{id}.mp4 byte for byte, records bytes and sha256, and removes the original', async () => {
    const spec = { taskId: 'inv-1', seconds: 9, width: 180, height: 320, bytes: 300_000 };
    const video = videoStream(spec);
    const bytes = video.slice(0, video.size - 1);
    await put('bedrock/task_a/inv1/output.mp4', bytes);
    const facts = await copyVideo(options(), `s3://${s3.bucket}/bedrock/task_a/inv1/output.mp4`, 'videos/task_a.mp4');
    expect(facts).toEqual({
      key: 'videos/task_a.mp4',
      bytes: 300_000,
      sha256: videoSha256(spec),
      contentType: 'video/mp4',
      // Measured from the copied MP4 itself.
      durationSeconds: 9,
      width: 180,
      height: 320,
      codec: 'avc1',
    });
    const copied = await s3.read('videos/task_a.mp4');
    expect(sha(copied!)).toBe(facts.sha256);
    expect(await s3.read('bedrock/task_a/inv1/output.mp4')).toBeUndefined();
    const head = await s3.s3.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'videos/task_a.mp4' }));
    expect(head.ContentType).toBe('video/mp4');
    await head.Body!.transformToByteArray();
  });

  it('refuses a file that is not an MP4 and writes nothing under videos/', async () => {
    await put('bedrock/task_b/inv/output.mp4', Buffer.from('<!doctype html><html>error</html>'));
    await expect(copyVideo(options(), `s3://${s3.bucket}/bedrock/task_b/inv/output.mp4`, 'videos/task_b.mp4')).rejects.toThrow('the upstream file is not an MP4 video (no ftyp box)');
    expect(await s3.read('videos/task_b.mp4')).toBeUndefined();
    expect(await s3.read('bedrock/task_b/inv/output.mp4')).toBeDefined();
  });

  it('hands the facts to beforeStore before the copy appears; a throw there leaves the original and no copy', async () => {
    await put('bedrock/task_h/inv/output.mp4', sampleVideo());
    const seen: { bytes: number; copyThere: boolean }[] = [];
    const lost = new Error('another worker took the task over');
    const source = `s3://${s3.bucket}/bedrock/task_h/inv/output.mp4`;
    await expect(
      copyVideo(options(), source, 'videos/task_h.mp4', {
        beforeStore: async (facts) => {
          seen.push({ bytes: facts.bytes, copyThere: (await s3.read('videos/task_h.mp4')) !== undefined });
          throw lost;
        },
      }),
    ).rejects.toBe(lost);
    expect(seen).toEqual([{ bytes: sampleVideo().length, copyThere: false }]);
    expect(await s3.read('videos/task_h.mp4')).toBeUndefined();
    expect(await s3.read('bedrock/task_h/inv/output.mp4')).toBeDefined();
  });

  it('refuses a video over the size cap', async () => {
    await put('bedrock/task_c/inv/output.mp4', sampleVideo());
    await expect(copyVideo(options(1000), `s3://${s3.bucket}/bedrock/task_c/inv/output.mp4`, 'videos/task_c.mp4')).rejects.toThrow(
      `the video is ${sampleVideo().length} bytes, over the 1000-byte cap`,
    );
    expect(await s3.read('videos/task_c.mp4')).toBeUndefined();
  });

  it('refuses a location outside its own bucket or the bedrock/ prefix', async () => {
    await expect(copyVideo(options(), 's3://someone-elses-bucket/bedrock/x/output.mp4', 'videos/t.mp4')).rejects.toThrow(/outside the gateway's bedrock\/ prefix/);
    await expect(copyVideo(options(), `s3://${s3.bucket}/videos/other.mp4`, 'videos/t.mp4')).rejects.toThrow(/outside the gateway's bedrock\/ prefix/);
  });

  it('a missing original is an archive failure, unless an earlier attempt already copied it: then it resumes from the copy', async () => {
    await expect(copyVideo(options(), `s3://${s3.bucket}/bedrock/task_d/inv/output.mp4`, 'videos/task_d.mp4')).rejects.toThrow(/the upstream's video is not in the bucket/);
    // An attempt that copied and deleted, then died before recording the task.
    await put('videos/task_e.mp4', sampleVideo());
    const facts = await copyVideo(options(), `s3://${s3.bucket}/bedrock/task_e/inv/output.mp4`, 'videos/task_e.mp4');
    expect(facts).toMatchObject({ bytes: sampleVideo().length, sha256: sha(sampleVideo()) });
  });
});

describe('copies above the single-copy limit', () => {
  // Mocks every S3Client while it lasts, so only inside this block.
  let mock: ReturnType<typeof mockClient>;
  beforeAll(() => {
    mock = mockClient(S3Client);
  });
  afterAll(() => mock.restore());
  // The copier only pipes the body, so a plain stream stands in for the SDK's.
  const body = () => Readable.from([sampleVideo()]) as never;

  it('go part by part with UploadPartCopy, each part bound to the ETag that was read', async () => {
    mock.reset();
    mock.on(GetObjectCommand).resolves({ Body: body(), ContentLength: sampleVideo().length, ETag: '"e1"' });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-1' });
    mock.on(UploadPartCopyCommand).callsFake((input: { PartNumber: number }) => ({ CopyPartResult: { ETag: `"p${input.PartNumber}"` } }));
    mock.on(CompleteMultipartUploadCommand).resolves({});
    mock.on(DeleteObjectCommand).resolves({});
    const client = new S3Client({ region: 'us-east-1' });
    const size = sampleVideo().length;
    const facts = await copyVideo({ s3: client, bucket: 'bkt', maxBytes: 1e9, singleCopyMaxBytes: 1000, copyPartBytes: 1000 }, 's3://bkt/bedrock/t/i/output.mp4', 'videos/t.mp4');
    expect(facts.bytes).toBe(size);
    const parts = mock.commandCalls(UploadPartCopyCommand).map((c) => c.args[0].input);
    expect(parts).toHaveLength(Math.ceil(size / 1000));
    expect(parts[0]).toMatchObject({ Bucket: 'bkt', Key: 'videos/t.mp4', UploadId: 'up-1', PartNumber: 1, CopySource: 'bkt/bedrock/t/i/output.mp4', CopySourceIfMatch: '"e1"', CopySourceRange: 'bytes=0-999' });
    expect(parts.at(-1)!.CopySourceRange).toBe(`bytes=${(parts.length - 1) * 1000}-${size - 1}`);
    expect(mock.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.MultipartUpload!.Parts).toHaveLength(parts.length);
    expect(mock.commandCalls(CopyObjectCommand)).toHaveLength(0);
    expect(mock.commandCalls(DeleteObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'bkt', Key: 'bedrock/t/i/output.mp4' });
  });

  it('a part that fails (the original changed since it was read) aborts the upload and keeps the original', async () => {
    mock.reset();
    mock.on(GetObjectCommand).resolves({ Body: body(), ContentLength: sampleVideo().length, ETag: '"e1"' });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-2' });
    mock.on(UploadPartCopyCommand).rejects(Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed' }));
    mock.on(AbortMultipartUploadCommand).resolves({});
    const client = new S3Client({ region: 'us-east-1' });
    await expect(copyVideo({ s3: client, bucket: 'bkt', maxBytes: 1e9, singleCopyMaxBytes: 1000, copyPartBytes: 1000 }, 's3://bkt/bedrock/t/i/output.mp4', 'videos/t.mp4')).rejects.toThrow(
      'the server-side copy of s3://bkt/bedrock/t/i/output.mp4 failed: PreconditionFailed: At least one of the pre-conditions you specified did not hold',
    );
    expect(mock.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input).toEqual({ Bucket: 'bkt', Key: 'videos/t.mp4', UploadId: 'up-2' });
    expect(mock.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('a single copy is bound to the ETag that was read too', async () => {
    mock.reset();
    mock.on(GetObjectCommand).resolves({ Body: body(), ContentLength: sampleVideo().length, ETag: '"e9"' });
    mock.on(CopyObjectCommand).resolves({});
    mock.on(DeleteObjectCommand).resolves({});
    await copyVideo({ s3: new S3Client({ region: 'us-east-1' }), bucket: 'bkt', maxBytes: 1e9 }, 's3://bkt/bedrock/t/i/output.mp4', 'videos/t.mp4');
    expect(mock.commandCalls(CopyObjectCommand)[0]!.args[0].input).toMatchObject({ CopySource: 'bkt/bedrock/t/i/output.mp4', CopySourceIfMatch: '"e9"', ContentType: 'video/mp4', MetadataDirective: 'REPLACE' });
  });
});
