import { s3 } from './aws/s3';
import type { Config } from './config';
import { InputImages } from './input-images';
import { VideoLinks } from './video-links';

/** Presigned links to stored videos (query and notify). */
export const videoLinks = (c: Config) => new VideoLinks(s3(), c.BUCKET_NAME, c.PRESIGN_TTL_SECONDS);

/** Uploaded reference images (submit stores them; submit and reconcile sign their links). */
export const inputImages = (c: Config) => new InputImages(s3(), c.BUCKET_NAME);
