import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

import { s3ClientFor } from '../../lambdas/shared/aws/s3';
import { localPolicy } from '../../lambdas/shared/outbound';
import type { VideoFacts } from '../../lambdas/shared/task-store';
import { ArchiveError, UPLOAD_PART_BYTES, VideoStore } from '../../lambdas/shared/videos';
import { videoSha256, videoStream } from '../../local/mp4';

/**
 * The archive's writer against a loopback S3 whose answers each test chooses, and a loopback
 * file host: which failure is reported when both sides fail, what is recorded before the
 * object appears, and how a stored object is recognised.
 */

interface S3Call {
  method: string;
  path: string;
  query: URLSearchParams;
}

type S3Answer = { status: number; headers?: Record<string, string>; body?: string } | 'default';

let calls: S3Call[] = [];
/** Per request, an answer other than the default one (or 'default'). */
let answer: (call: S3Call) => S3Answer = () => 'default';

const s3Error = (status: number, code: string, message: string): S3Answer => ({
  status,
  headers: { 'content-type': 'application/xml' },
  body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>r1</RequestId></Error>`,
});

function defaultAnswer(call: S3Call): Exclude<S3Answer, 'default'> {
  const xml = (body: string) => ({ status: 200, headers: { 'content-type': 'application/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>${body}` });
  if (call.method === 'POST' && call.query.has('uploads'))
    return xml('<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>');
  if (call.method === 'POST' && call.query.has('uploadId'))
    return xml('<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>');
  if (call.method === 'DELETE') return { status: 204 };
  if (call.method === 'HEAD') return { status: 404 };
  return { status: 200, headers: { etag: '"e"' } };
}

const s3Server: Server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://s3');
    const call = { method: req.method ?? '', path: url.pathname, query: url.searchParams };
    calls.push(call);
    const chosen = answer(call);
    const a = chosen === 'default' ? defaultAnswer(call) : chosen;
    res.writeHead(a.status, a.headers).end(a.body);
  });
});

/** Serves `/video/<bytes>` as a real MP4 of that size; `/broken/<bytes>` cuts the connection half-way. */
const files: Server = createServer((req, res) => {
  const [, kind, size] = (req.url ?? '').split('/');
  const video = videoStream({ taskId: 'task_unit', bytes: Number(size) });
  res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size });
  if (kind === 'broken') {
    res.write(video.slice(0, Math.floor(video.size / 2)), () => res.socket?.destroy());
    return;
  }
  video.stream().pipe(res);
});

let store: VideoStore;
let filesUrl = '';

const listen = (server: Server) => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
const close = (server: Server) => new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections();
});

beforeAll(async () => {
  const s3Url = await listen(s3Server);
  filesUrl = await listen(files);
  const s3 = s3ClientFor(s3Url, { region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, maxAttempts: 1 });
  store = new VideoStore({ s3, bucket: 'videos-bucket', maxBytes: 64 * 1024 * 1024, policy: localPolicy, timeoutMs: 5000 });
});

afterAll(async () => {
  await close(s3Server);
  await close(files);
});

beforeEach(() => {
  calls = [];
  answer = () => 'default';
});

const TWO_PARTS = UPLOAD_PART_BYTES + 1024 * 1024;
const isUploadPart = (c: S3Call) => c.method === 'PUT' && c.query.has('partNumber');
const isComplete = (c: S3Call) => c.method === 'POST' && c.query.has('uploadId');

describe('an archive that fails reports its first cause', () => {
  it('S3 refusing a part (400 InvalidArgument) is the reason, not the download it cut short', async () => {
    answer = (c) => (isUploadPart(c) ? s3Error(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000') : 'default');
    const failure = await store.archive(`${filesUrl}/video/${TWO_PARTS}`, 'videos/task_unit.mp4').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ArchiveError);
    expect((failure as Error).message).toMatch(/^the bucket refused part [12]: 400 InvalidArgument: Part number must be an integer between 1 and 10000$/);
    // The abandoned upload is aborted, and nothing completes it.
    expect(calls.some((c) => c.method === 'DELETE' && c.query.get('uploadId') === 'u1')).toBe(true);
    expect(calls.some(isComplete)).toBe(false);
  });

  it('S3 refusing the single PutObject of a small video is the reason', async () => {
    answer = (c) => (c.method === 'PUT' ? s3Error(403, 'AccessDenied', 'Access Denied') : 'default');
    await expect(store.archive(`${filesUrl}/video/200000`, 'videos/task_unit.mp4')).rejects.toThrow(
      'the bucket refused the object: 403 AccessDenied: Access Denied',
    );
  });

  it('a download that breaks off is the reason, whatever the upload says after it', async () => {
    await expect(store.archive(`${filesUrl}/broken/${TWO_PARTS}`, 'videos/task_unit.mp4')).rejects.toThrow(
      /^the download (broke off after \d+ bytes|ended after \d+ of \d+ bytes)/,
    );
    expect(calls.some(isComplete)).toBe(false);
  });
});

describe('before the object appears', () => {
  it('the video facts are handed to beforeStore, before CompleteMultipartUpload is sent', async () => {
    const seen: { facts: VideoFacts; completedBefore: boolean }[] = [];
    const facts = await store.archive(`${filesUrl}/video/${TWO_PARTS}`, 'videos/task_unit.mp4', {
      beforeStore: async (f) => {
        seen.push({ facts: f, completedBefore: calls.some(isComplete) });
      },
    });
    const expected = {
      key: 'videos/task_unit.mp4',
      bytes: TWO_PARTS,
      sha256: videoSha256({ taskId: 'task_unit', bytes: TWO_PARTS }),
      contentType: 'video/mp4',
      // Measured in the same pass, so a resumed archive keeps them too (the simulators' default video).
      durationSeconds: 5,
      width: 320,
      height: 180,
      codec: 'avc1',
    };
    expect(facts).toEqual(expected);
    expect(seen).toEqual([{ facts: expected, completedBefore: false }]);
    expect(calls.filter(isComplete)).toHaveLength(1);
  });

  it('a small video (one PutObject) is recorded before it is put', async () => {
    let putBefore = true;
    await store.archive(`${filesUrl}/video/200000`, 'videos/task_unit.mp4', {
      beforeStore: async () => {
        putBefore = calls.some((c) => c.method === 'PUT');
      },
    });
    expect(putBefore).toBe(false);
    expect(calls.filter((c) => c.method === 'PUT')).toHaveLength(1);
  });

  it('a beforeStore that throws abandons the upload: no object, and its error is the reason', async () => {
    const lost = new Error('another worker took the task over');
    await expect(
      store.archive(`${filesUrl}/video/${TWO_PARTS}`, 'videos/task_unit.mp4', {
        beforeStore: async () => {
          throw lost;
        },
      }),
    ).rejects.toBe(lost);
    expect(calls.some(isComplete)).toBe(false);
    expect(calls.some((c) => c.method === 'DELETE')).toBe(true);
  });
});

describe('findStored', () => {
  const recorded: VideoFacts = { key: 'videos/task_unit.mp4', bytes: 5000, sha256: 'ab'.repeat(32), contentType: 'video/mp4' };
  const head = (headers: Record<string, string>): S3Answer => ({ status: 200, headers: { 'content-type': 'video/mp4', ...headers } });

  it('finds the object of the recorded size', async () => {
    answer = (c) => (c.method === 'HEAD' ? head({ 'content-length': '5000' }) : 'default');
    expect(await store.findStored(recorded)).toEqual(recorded);
    expect(calls).toMatchObject([{ method: 'HEAD', path: '/videos-bucket/videos/task_unit.mp4' }]);
  });

  it('finds nothing when there is no object', async () => {
    expect(await store.findStored(recorded)).toBeUndefined();
  });

  it('does not take an object of another size for the video', async () => {
    answer = (c) => (c.method === 'HEAD' ? head({ 'content-length': '4999' }) : 'default');
    expect(await store.findStored(recorded)).toBeUndefined();
  });

  it('compares the SHA-256 where the bucket keeps a full-object one', async () => {
    const sha = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
    answer = (c) =>
      c.method === 'HEAD'
        ? head({ 'content-length': '5000', 'x-amz-checksum-sha256': sha('cd'.repeat(32)), 'x-amz-checksum-type': 'FULL_OBJECT' })
        : 'default';
    expect(await store.findStored(recorded)).toBeUndefined();
    answer = (c) =>
      c.method === 'HEAD'
        ? head({ 'content-length': '5000', 'x-amz-checksum-sha256': sha(recorded.sha256), 'x-amz-checksum-type': 'FULL_OBJECT' })
        : 'default';
    expect(await store.findStored(recorded)).toEqual(recorded);
  });

  it('lets other S3 errors through (the attempt is retried)', async () => {
    answer = (c) => (c.method === 'HEAD' ? { status: 403 } : 'default');
    await expect(store.findStored(recorded)).rejects.toThrow();
  });
});
