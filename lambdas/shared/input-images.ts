import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Where a client's uploaded reference image lives: beside the videos, never under `videos/` (the archive's notification prefix). */
export const inputKey = (taskId: string, ext: string) => `inputs/${taskId}.${ext}`;

/** How long the upstream has to fetch an uploaded reference image. */
export const INPUT_LINK_SECONDS = 3600;

/**
 * Reference images clients upload with an OpenAI-dialect create. The task keeps the image's
 * key; each hand-off to an upstream (the first submit, a resubmit, a failover hours later)
 * gets a link signed then, valid for `INPUT_LINK_SECONDS` from that moment.
 */
export class InputImages {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  /** Store the image under `key`. */
  async put(key: string, bytes: Buffer, contentType: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentType: contentType }));
  }

  /** A GET link to the stored image, signed at `at` (epoch ms; the gateway's clock). */
  link(key: string, at: number): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: INPUT_LINK_SECONDS,
      signingDate: new Date(at),
    });
  }
}
