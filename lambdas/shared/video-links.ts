import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Where a task's video lives in the bucket; the stack's notification filter matches it. */
export const videoKey = (taskId: string) => `videos/${taskId}.mp4`;

/** Where a rendition of a task's video lives, before its type's extension: beside the MP4, outside the notification filter (`.mp4`). */
export const renditionKey = (taskId: string, variant: string) => `videos/${taskId}.${variant}`;

/** Short-lived download links to stored videos (the readers' half; writing is `VideoStore`). */
export class VideoLinks {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly presignSeconds: number,
  ) {}

  /** A fresh GET URL, minted on every call. */
  async presign(key: string, now = Date.now()): Promise<{ url: string; expiresAt: number }> {
    const url = await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: this.presignSeconds,
    });
    return { url, expiresAt: Math.floor(now / 1000) + this.presignSeconds };
  }

  /** Delete a stored video (the client's delete); a key already gone is no error. */
  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
