import { openGet, type GetOptions } from './outbound';

/** An image's type, told by its first bytes (a sender's declared type is not trusted). */
export interface ImageKind {
  contentType: string;
  ext: string;
}

/** PNG, JPEG or WebP: the kinds the Videos API takes as a reference and hands out as renditions. */
export function imageKind(bytes: Buffer): ImageKind | undefined {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return { contentType: 'image/png', ext: 'png' };
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return { contentType: 'image/jpeg', ext: 'jpg' };
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return { contentType: 'image/webp', ext: 'webp' };
  return undefined;
}

/** Why an image could not be had; `status` is the host's answer, when it gave one. */
export class ImageFetchError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * The image at `url`, read whole up to `maxBytes` (images are small; videos are streamed), and
 * only if it is a PNG, JPEG or WebP by its bytes. A host's other answers, an image too large and
 * bytes of another kind are `ImageFetchError`s whose message completes "the image …"; the
 * outbound guard's refusals are thrown as they are.
 */
export async function fetchImage(url: string, options: GetOptions & { maxBytes: number }): Promise<{ bytes: Buffer; kind: ImageKind }> {
  const response = await openGet(url, options);
  if (response.status !== 200) {
    response.body.destroy();
    throw new ImageFetchError(`could not be fetched: its host answered ${response.status}`, response.status);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > options.maxBytes) {
      response.body.destroy();
      throw new ImageFetchError(`is larger than ${options.maxBytes / 1024 / 1024} MiB`);
    }
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  const kind = imageKind(bytes);
  if (!kind) throw new ImageFetchError('is not a PNG, JPEG or WebP image');
  return { bytes, kind };
}
