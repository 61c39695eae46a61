import { falApp, FalProvider } from '../../lambdas/shared/providers/fal';
import { OpenRouterProvider } from '../../lambdas/shared/providers/openrouter';
import { ReplicateProvider } from '../../lambdas/shared/providers/replicate';
import { startFalUpstream } from '../../local/fal-upstream';
import type { JobSim, SimJob } from '../../local/job-sim';
import { videoSha256 } from '../../local/mp4';
import { startOpenRouterUpstream } from '../../local/openrouter-upstream';
import { startReplicateUpstream } from '../../local/replicate-upstream';
import type { ConformanceSubject, SimulatorUnderTest } from './subject';

/** The fal, Replicate and OpenRouter subjects of the conformance suite, each against its simulator. */

const apiKey = 'conformance-key';

function underTest(url: string, sim: JobSim, upstreamIdOf: (job: SimJob) => string): SimulatorUnderTest {
  const jobOf = (upstreamId: string) => [...sim.jobs.values()].find((j) => upstreamIdOf(j) === upstreamId);
  return {
    url,
    apiKey,
    setFaults: (faults) => sim.setFaults(faults),
    jobCount: () => sim.jobs.size,
    jobIds: () => [...sim.jobs.values()].map(upstreamIdOf),
    expectedSha256(upstreamId) {
      const job = jobOf(upstreamId);
      if (!job) throw new Error(`the simulator holds no job ${upstreamId}`);
      return videoSha256({ taskId: job.id, ...job.video });
    },
    close: () => sim.close(),
  };
}

export const falSubject: ConformanceSubject = {
  kind: 'fal',
  model: 'fal-ai/kling-video/v2.1/master/text-to-video',
  finalCallbackOnly: true,
  async start({ timeoutMs, renderMs }) {
    const upstream = await startFalUpstream({ apiKey, renderMs });
    return {
      sim: underTest(upstream.url, upstream.sim, (job) => `${falApp(job.model)}/requests/${job.id}`),
      provider: new FalProvider({ name: 'fal', baseUrl: upstream.url, apiKey: async () => apiKey, timeoutMs }),
    };
  },
};

export const replicateSubject: ConformanceSubject = {
  kind: 'replicate',
  model: 'kwaivgi/kling-v2.1',
  finalCallbackOnly: true,
  async start({ timeoutMs, renderMs }) {
    const upstream = await startReplicateUpstream({ apiKey, renderMs });
    return {
      sim: underTest(upstream.url, upstream.sim, (job) => job.id),
      provider: new ReplicateProvider({
        name: 'replicate',
        baseUrl: upstream.url,
        apiKey: async () => apiKey,
        webhookSecret: async () => upstream.webhookSecret,
        timeoutMs,
      }),
    };
  },
};

export const openrouterSubject: ConformanceSubject = {
  kind: 'openrouter',
  model: 'google/veo-3.1',
  finalCallbackOnly: true,
  async start({ timeoutMs, renderMs }) {
    const upstream = await startOpenRouterUpstream({ apiKey, renderMs });
    return {
      sim: underTest(upstream.url, upstream.sim, (job) => job.id),
      provider: new OpenRouterProvider({ name: 'openrouter', baseUrl: upstream.url, apiKey: async () => apiKey, timeoutMs }),
    };
  },
};

export const aggregatorSubjects = [falSubject, replicateSubject, openrouterSubject];
