import { localPolicy } from '../../lambdas/shared/outbound';
import { OpenAIProvider } from '../../lambdas/shared/providers/openai';
import { SimulatedProvider } from '../../lambdas/shared/providers/simulated';
import { videoSha256 } from '../../local/mp4';
import { startOpenAIUpstream } from '../../local/openai-upstream';
import { startSimulatedUpstream } from '../../local/simulated-upstream';
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
        setFaults: up.setFaults,
        jobCount: () => up.tasks.size,
        jobIds: () => [...up.tasks.keys()],
        expectedSha256(id: string) {
          const task = up.tasks.get(id);
          if (!task) throw new Error(`the simulator has no job ${id}`);
          return videoSha256({ taskId: id, bytes: task.videoBytes });
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
        setFaults: up.setFaults,
        jobCount: () => up.jobs.size,
        jobIds: () => [...up.jobs.keys()],
        expectedSha256(id: string) {
          const job = up.jobs.get(id);
          if (!job) throw new Error(`the simulator has no job ${id}`);
          return videoSha256({ taskId: id, bytes: job.videoBytes });
        },
        close: up.close,
      };
      return { sim, provider };
    },
  },
];
