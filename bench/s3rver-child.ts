import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/**
 * The local S3 in a process of its own, standing in for the remote S3 of a deployment, so
 * that it does not share an event loop with the simulated upstream or the archive worker:
 * `node --import tsx bench/s3rver-child.ts <directory> <bucket>` prints `{"endpoint"}` once the
 * bucket exists, and stops when its stdin closes.
 */
const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) throw new Error('usage: s3rver-child.ts <directory> <bucket>');

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, allowMismatchedSignatures: true });
const { port } = await server.run();
const endpoint = `http://127.0.0.1:${port}`;
const s3 = new S3Client({ endpoint, region: 'us-east-1', credentials, forcePathStyle: true });
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
s3.destroy();
process.stdout.write(`${JSON.stringify({ endpoint })}\n`);

process.stdin.resume();
process.stdin.on('end', () => {
  server.httpServer?.closeAllConnections();
  void server.close().then(() => process.exit(0));
});
