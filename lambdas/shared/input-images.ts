import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Where a client's uploaded reference image lives: beside the videos, never under `videos/` (the archive's notification prefix). */
export const inputKey = (taskId: string, ext: string) => `inputs/${taskId}.${ext}`;

/** How long the upstream has to fetch an uploaded reference image. */
export const INPUT_LINK_SECONDS = 3600;

/** Reference images clients upload with an OpenAI-dialect create, handed to the upstream as presigned links. */
export class InputImages {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  /** Store the image and answer a short-lived GET link to it. */
  async put(key: string, bytes: Buffer, contentType: string): Promise<string> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentType: contentType }));
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: INPUT_LINK_SECONDS });
  }
}
