import type { UpstreamJob } from './provider';

/**
 * The input body of each fal model family, built in one place: fal's video endpoints take
 * the same ideas under different names and types (Kling and Seedance take the duration as
 * the string "5", Veo as "8s", Wan 2.2 takes frames; only some take a resolution), per the
 * input schemas on each model's API page. An endpoint that is not one of these families
 * gets the common core (prompt, aspect_ratio, numeric duration, image_url, resolution).
 */

export type FalFamily = 'kling' | 'wan' | 'seedance' | 'veo' | 'generic';

const families: readonly (readonly [FalFamily, RegExp])[] = [
  ['kling', /(^|\/)kling/i],
  ['wan', /(^|\/)wan(-|\/|$)/i],
  ['seedance', /seedance/i],
  ['veo', /(^|\/)veo/i],
];

export function falFamily(modelId: string): FalFamily {
  return families.find(([, pattern]) => pattern.test(modelId))?.[0] ?? 'generic';
}

export type FalInput = Record<string, string | number | boolean>;

/** Wan 2.2 renders 16 frames per second and takes 81..121 frames; later Wan endpoints take a duration. */
const wanFrames = (seconds: number) => Math.max(81, Math.min(121, Math.round(seconds * 16) + 1));

export function falInput(job: UpstreamJob): FalInput {
  const image = job.imageUrls[0];
  const common: FalInput = { prompt: job.prompt, aspect_ratio: job.aspectRatio };
  if (image) common.image_url = image;
  switch (falFamily(job.model)) {
    case 'kling':
      return { ...common, duration: String(job.duration) };
    case 'seedance':
      return { ...common, duration: String(job.duration), ...(job.resolution ? { resolution: job.resolution } : {}) };
    case 'veo':
      return { ...common, duration: `${job.duration}s`, ...(job.resolution ? { resolution: job.resolution } : {}) };
    case 'wan':
      return /wan\/v2\.2|wan-2\.2/i.test(job.model)
        ? { ...common, num_frames: wanFrames(job.duration), ...(job.resolution ? { resolution: job.resolution } : {}) }
        : { ...common, duration: String(job.duration), ...(job.resolution ? { resolution: job.resolution } : {}) };
    default:
      return { ...common, duration: job.duration, ...(job.resolution ? { resolution: job.resolution } : {}) };
  }
}
