import { S3Client } from '@aws-sdk/client-s3';
import { config } from '../config';

let client: S3Client | undefined;

/** The process's S3 client, made on first use. */
export function s3(): S3Client {
  const endpoint = config().S3_ENDPOINT;
  client ??= new S3Client(
    endpoint
      ? {
          endpoint,
          // The local S3 (s3rver) serves path-style URLs only and rejects the SDK's
          // default trailing-checksum uploads.
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {},
  );
  return client;
}
