import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parseS3Uri } from '../../lambdas/shared/bedrock-output';
import { localPolicy } from '../../lambdas/shared/outbound';
import { BedrockProvider } from '../../lambdas/shared/providers/bedrock';
import { OpenAIProvider } from '../../lambdas/shared/providers/openai';
import { SimulatedProvider } from '../../lambdas/shared/providers/simulated';
import { videoSha256 } from '../../local/mp4';
import { startOpenAIUpstream } from '../../local/openai-upstream';
import { startSimulatedUpstream } from '../../local/simulated-upstream';
import { startBedrockStack } from '../support/bedrock-stack';
import { aggregatorSubjects } from './aggregator-subjects';
import type { ConformanceSubject } from './subject';

const apiKey = 'sk-conformance';

/** Every provider kind with its simulator; the suite in `providers.test.ts` runs each. */
export const subjects: ConformanceSubject[] = [
  {
    kind: 'simulated',
    model: 'sora-2',
    async start({ timeoutMs, renderMs }) {
      const up = await startSimulatedUpstream({ apiKey, renderMs });
      const provider = new SimulatedProvider({ name: 'sim', baseUrl: up.url, apiKey: async () => apiKey, timeoutMs });
      const sim = {
        url: up.url,
        apiKey,
        setFaults: up.setFaults,
        jobCount: () => up.tasks.size,
        jobIds: () => [...up.tasks.keys()],
        expectedSha256(id: string) {
          const task = up.tasks.get(id);
          if (!task) throw new Error(`the simulator has no job ${id}`);
          return videoSha256({ taskId: id, ...task.video });
        },
        close: up.close,
      };
      return { sim, provider };
    },
  },
  {
    kind: 'openai',
    model: 'doubao-seedance-2-0-pro',
    async start({ timeoutMs, renderMs }) {
      const up = await startOpenAIUpstream({ apiKey, renderMs });
      const provider = new OpenAIProvider({ name: 'reseller', baseUrl: up.url, apiKey: async () => apiKey, timeoutMs, imagePolicy: localPolicy });
      const sim = {
        url: up.url,
        apiKey,
        setFaults: up.setFaults,
        jobCount: () => up.jobs.size,
        jobIds: () => [...up.jobs.keys()],
        expectedSha256(id: string) {
          const job = up.jobs.get(id);
          if (!job) throw new Error(`the simulator has no job ${id}`);
          return videoSha256({ taskId: id, ...job.video });
        },
        close: up.close,
      };
      return { sim, provider };
    },
  },
  {
    kind: 'bedrock',
    model: 'luma.ray-v2:0',
    async start({ timeoutMs, renderMs }) {
      const { s3, bedrock, close } = await startBedrockStack({ renderMs });
      const provider = new BedrockProvider({
        name: 'aws',
        region: 'us-west-2',
        bucket: s3.bucket,
        timeoutMs,
        endpoint: bedrock.url,
        credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
      });
      const sim = {
        url: bedrock.url,
        apiKey,
        setFaults: bedrock.setFaults,
        jobCount: () => bedrock.invocations.size,
        jobIds: () => [...bedrock.invocations.keys()],
        expectedSha256: bedrock.expectedSha256,
        // Bedrock writes into our bucket: the video is the object in the embedded S3.
        async readVideo(videoUrl: string) {
          const at = parseS3Uri(videoUrl);
          if (!at) throw new Error(`not an s3:// URL: ${videoUrl}`);
          const out = await s3.s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }));
          return { bytes: Buffer.from(await out.Body!.transformToByteArray()), contentType: out.ContentType ?? '' };
        },
        close,
      };
      return { sim, provider };
    },
  },
  ...aggregatorSubjects,
];
