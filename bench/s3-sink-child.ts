import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A diagnostic stand-in for S3 that accepts a multipart upload and throws the bytes away (no
 * disk, no hashing), so the archive worker's own cost can be told apart from s3rver's:
 * `node --import tsx bench/s3-sink-child.ts` prints `{"endpoint"}` and stops when its stdin closes.
 * It speaks just enough of the S3 REST API for lib-storage's Upload.
 */
const xml = (res: http.ServerResponse, body: string) => {
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://sink');
  req.resume();
  req.on('end', () => {
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = rest.join('/');
    if (req.method === 'POST' && url.searchParams.has('uploads'))
      return xml(res, `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>sink</UploadId></InitiateMultipartUploadResult>`);
    if (req.method === 'POST' && url.searchParams.has('uploadId'))
      return xml(res, `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>"sink-1"</ETag></CompleteMultipartUploadResult>`);
    if (req.method === 'PUT') {
      res.writeHead(200, { etag: `"sink-${url.searchParams.get('partNumber') ?? 0}"` });
      return res.end();
    }
    res.writeHead(204);
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
process.stdin.resume();
process.stdin.on('end', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
