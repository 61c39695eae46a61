import * as z from 'zod/mini';
import { UpstreamError, type UpstreamJob } from './provider';

/**
 * The `modelInput` of `StartAsyncInvoke` for each Bedrock video model family, built in this
 * one place: the next model is one more entry in `families`. A request the model cannot take
 * is refused here (`rejected`), before anything is sent or paid for.
 */

/** JSON, as the SDK's `modelInput` document takes it. */
export type ModelInput = { [key: string]: Json };
type Json = string | number | boolean | null | Json[] | ModelInput;

interface BedrockModelFamily {
  /** What the operator sees in messages. */
  name: string;
  matches(modelId: string): boolean;
  input(job: UpstreamJob): ModelInput;
}

/** Luma Ray2 on Bedrock: text to video, 5 or 9 seconds, 540p or 720p. */
export const lumaRay2InputSchema = z.object({
  prompt: z.string().check(z.minLength(1), z.maxLength(5000)),
  aspect_ratio: z.enum(['1:1', '16:9', '9:16', '4:3', '3:4', '21:9', '9:21']),
  duration: z.enum(['5s', '9s']),
  resolution: z.enum(['540p', '720p']),
  loop: z.boolean(),
});
export type LumaRay2Input = z.infer<typeof lumaRay2InputSchema>;

const lumaRay2: BedrockModelFamily = {
  name: 'Luma Ray2',
  matches: (id) => /^(?:[a-z]{2,4}\.)?luma\.ray-v2(?::|$)/.test(id),
  input(job) {
    refuseExtras(this.name, job);
    const input = { prompt: job.prompt, aspect_ratio: job.aspectRatio, duration: `${job.duration}s`, resolution: job.resolution ?? '720p', loop: false };
    const parsed = lumaRay2InputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0]);
      const allowed = { aspect_ratio: 'aspect ratios 1:1, 16:9, 9:16, 4:3, 3:4, 21:9, 9:21', duration: 'durations 5 and 9 seconds', resolution: 'resolutions 540p and 720p' }[field];
      throw new UpstreamError('rejected', `${this.name} on Bedrock takes ${allowed ?? 'a prompt of 1 to 5000 characters'}; this task asks for ${field} ${String((input as Record<string, unknown>)[field])}`);
    }
    return parsed.data;
  },
};

const families: readonly BedrockModelFamily[] = [lumaRay2];

function refuseExtras(name: string, job: UpstreamJob): void {
  if (job.imageUrls.length > 0) throw new UpstreamError('rejected', `${name} on Bedrock takes no reference image (set maxImages to 0 for this model)`);
  if (job.characters.length > 0) throw new UpstreamError('rejected', `${name} on Bedrock takes no characters`);
}

/** The model input for this job's Bedrock model id (`job.model`). */
export function bedrockModelInput(job: UpstreamJob): ModelInput {
  const family = families.find((f) => f.matches(job.model));
  // No job was sent: another route may serve this model.
  if (!family) throw new UpstreamError('unavailable', `the gateway does not know the input of Bedrock model ${job.model} (it knows ${families.map((f) => f.name).join(', ')})`);
  return family.input(job);
}
