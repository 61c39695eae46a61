import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { config } from '../config';

let client: S3Client | undefined;

/** The process's S3 client, made on first use. */
export function s3(): S3Client {
  client ??= s3ClientFor(config().S3_ENDPOINT);
  return client;
}

/** An S3 client for AWS (no endpoint) or for a local S3 at `endpoint`; `extra` for tools (region, credentials). */
export function s3ClientFor(endpoint: string | undefined, extra: S3ClientConfig = {}): S3Client {
  const created = new S3Client(
    endpoint
      ? {
          ...extra,
          endpoint,
          // The local S3 (s3rver) serves path-style URLs only and rejects the SDK's
          // default trailing-checksum uploads.
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : extra,
  );
  // Video parts are sent as UNSIGNED-PAYLOAD: TLS guards them on the way, the archive hashes
  // every byte itself, and SigV4's payload hash would be a second SHA-256 pass over each part.
  created.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (context.commandName === 'UploadPartCommand' && request.headers && !('x-amz-content-sha256' in request.headers))
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'unsignedUploadParts' },
  );
  return created;
}
