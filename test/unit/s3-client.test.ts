import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3ClientFor } from '../../lambdas/shared/aws/s3';

/** A loopback S3 that answers every request with 200 and an ETag, keeping what it was sent. */
const seen: { method: string; url: string; headers: IncomingHttpHeaders; bytes: number }[] = [];
const server = createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes });
    res.writeHead(200, { etag: '"etag-1"' });
    res.end();
  });
});
let endpoint = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const client = () => s3ClientFor(endpoint, { region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });

describe('the gateway S3 client', () => {
  it('sends video parts as UNSIGNED-PAYLOAD, signed and whole', async () => {
    seen.length = 0;
    const part = Buffer.alloc(64 * 1024, 7);
    const s3 = client();
    const out = await s3.send(new UploadPartCommand({ Bucket: 'b', Key: 'videos/t.mp4', UploadId: 'u1', PartNumber: 1, Body: part }));
    s3.destroy();
    expect(out.ETag).toBe('"etag-1"');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'PUT', url: expect.stringMatching(/^\/b\/videos\/t\.mp4\?partNumber=1&uploadId=u1/), bytes: part.length });
    expect(seen[0]!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    // Still signed, and the payload setting is one of the signed headers.
    expect(seen[0]!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AK\/.*SignedHeaders=[^,]*x-amz-content-sha256/);
  });

  it('in AWS, where the SDK adds a CRC32 of each part, S3 can still check the part', async () => {
    seen.length = 0;
    const part = Buffer.alloc(64 * 1024, 9);
    // The cloud configuration (no local endpoint), pointed at the loopback server for the test.
    const s3 = s3ClientFor(undefined, { endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
    await s3.send(new UploadPartCommand({ Bucket: 'b', Key: 'videos/t.mp4', UploadId: 'u1', PartNumber: 2, Body: part }));
    s3.destroy();
    expect(seen[0]!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(seen[0]!.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    expect(seen[0]!.bytes).toBe(part.length);
  });

  it('still hashes the payload of every other request', async () => {
    seen.length = 0;
    const body = Buffer.from('{"hello":"world"}');
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'notes/x.json', Body: body }));
    s3.destroy();
    expect(seen[0]!.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'));
  });
});
