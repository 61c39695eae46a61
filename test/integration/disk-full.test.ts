import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localCredentials, stackDefinitions, startEmbeddedAws, type EmbeddedAws } from '../../local/embedded-aws';
import { synthesizeTemplate } from '../../lib/synthesize-template';

/** A real full disk under the embedded S3: its folder is a 3 MiB tmpfs (needs root, as in CI here). */
const dataDir = mkdtempSync(join(tmpdir(), 'vtg-full-'));
const mountPoint = join(dataDir, 's3');
mkdirSync(mountPoint);
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', mountPoint], { stdio: 'ignore' });
  mounted = true;
} catch {
  mounted = false;
}

let aws: EmbeddedAws | undefined;
let s3: S3Client;

beforeAll(async () => {
  if (!mounted) return;
  const definitions = stackDefinitions(synthesizeTemplate() as { Resources: Record<string, { Type: string }> });
  aws = await startEmbeddedAws({ dataDir, tableName: 'tasks', bucketName: 'bkt', definitions });
  s3 = new S3Client({ endpoint: aws.s3Endpoint, region: 'us-east-1', credentials: localCredentials, forcePathStyle: true, maxAttempts: 1 });
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await aws?.close();
  if (mounted) execFileSync('umount', [mountPoint]);
  rmSync(dataDir, { recursive: true, force: true });
});

describe.runIf(mounted)('the embedded S3 on a full disk', () => {
  it('a write that does not fit fails that request (500), leaves no partial file, and the server keeps serving', async () => {
    const big = Buffer.alloc(6 * 2 ** 20, 1);
    const upload = new Upload({ client: s3, params: { Bucket: 'bkt', Key: 'videos/big.mp4', Body: big }, partSize: 5 * 2 ** 20, leavePartsOnError: false });
    await expect(upload.done()).rejects.toThrow();
    await expect(s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'videos/single.mp4', Body: big }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 500 },
    });
    const left = readdirSync(join(mountPoint, 'bkt'), { recursive: true }).map(String);
    expect(left.filter((f) => f.includes('big.mp4') || f.includes('single.mp4'))).toEqual([]);
    // Still alive: a small object fits and is stored.
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'videos/small.mp4', Body: Buffer.alloc(1024, 2) }));
    expect(readdirSync(join(mountPoint, 'bkt', 'videos'))).toContain('small.mp4._S3rver_object');
  }, 60_000);
});
