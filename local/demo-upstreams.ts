import type { ModelEntry, UpstreamConfig } from '../lambdas/shared/catalog';
import { seedModelIds } from '../lambdas/shared/catalog';
import { s3ClientFor } from '../lambdas/shared/aws/s3';
import { startSimulatedBedrock, type SimulatedBedrock } from './bedrock-upstream';
import { localCredentials } from './embedded-aws';
import { startFalUpstream, type FalUpstream } from './fal-upstream';
import { startOpenAIUpstream, type OpenAIUpstream } from './openai-upstream';
import { startOpenRouterUpstream, type OpenRouterUpstream } from './openrouter-upstream';
import { startReplicateUpstream, type ReplicateUpstream } from './replicate-upstream';

/**
 * `npm start` with no catalog of the operator's: a simulator of every other dialect on
 * loopback beside the simulated upstream, and one demo model routed to each, so every kind
 * can be tried end to end. The seed's Sora models stay on the simulated upstream, as they are.
 * With `persistIn`, the OpenAI-compatible simulator keeps its jobs and port across a restart,
 * as the simulated upstream does; the others keep none.
 */

export interface DemoSimulators {
  openai: OpenAIUpstream;
  bedrock: SimulatedBedrock;
  fal: FalUpstream;
  replicate: ReplicateUpstream;
  openrouter: OpenRouterUpstream;
}

export interface DemoUpstreams {
  sims: DemoSimulators;
  /** The simulated upstream first, then one upstream per simulator. */
  upstreams: UpstreamConfig[];
  /** The seed's models on the simulated upstream, then the demo models. */
  models: Record<string, ModelEntry>;
  close(): Promise<void>;
}

export interface DemoOptions {
  host: string;
  /** The simulated upstream (duomi dialect) the seed's models go to. */
  simulated: { name: string; url: string };
  apiKey: string;
  renderMs?: number;
  /** The embedded S3 the Bedrock simulator writes its output into. */
  s3Endpoint: string;
  region: string;
  /** Directory the simulators that keep their jobs across a restart keep them in. */
  persistIn?: string;
  log: (msg: string, fields?: object) => void;
}

/** One demo model per dialect: the catalog entry clients see, routed to that dialect's simulator. */
export const demoModels = {
  'seedance-2.0': { kind: 'openai', model: 'doubao-seedance-2-0-pro', durations: [5, 10], aspectRatios: ['16:9', '9:16', '1:1'], maxImages: 1 },
  'luma-ray-2': { kind: 'bedrock', model: 'luma.ray-v2:0', durations: [5, 9], aspectRatios: ['16:9', '9:16', '1:1'], maxImages: 0 },
  'kling-2.1': { kind: 'fal', model: 'fal-ai/kling-video/v2.1/master/text-to-video', durations: [5, 10], aspectRatios: ['16:9', '9:16', '1:1'], maxImages: 1 },
  'wan-2.5': { kind: 'replicate', model: 'wan-video/wan-2.5-t2v', durations: [5, 10], aspectRatios: ['16:9', '9:16'], maxImages: 1 },
  'veo-3.1': { kind: 'openrouter', model: 'google/veo-3.1', durations: [4, 6, 8], aspectRatios: ['16:9', '9:16'], maxImages: 1 },
} as const satisfies Record<string, { kind: keyof DemoSimulators; model: string } & Pick<ModelEntry, 'durations' | 'aspectRatios' | 'maxImages'>>;

export const demoUpstreamName = (kind: keyof DemoSimulators) => `demo-${kind}`;

export async function startDemoUpstreams(o: DemoOptions): Promise<DemoUpstreams> {
  const common = { host: o.host, apiKey: o.apiKey, renderMs: o.renderMs };
  const log = (msg: string, fields?: object) => o.log(`upstream: ${msg}`, fields);
  const s3 = s3ClientFor(o.s3Endpoint, { region: o.region, credentials: localCredentials });
  const started: { close(): Promise<void> }[] = [];
  const close = async () => {
    for (const sim of started.reverse()) await sim.close();
    s3.destroy();
  };
  try {
    const keep = <T extends { close(): Promise<void> }>(sim: T) => (started.push(sim), sim);
    const sims: DemoSimulators = {
      openai: keep(await startOpenAIUpstream({ ...common, persistIn: o.persistIn, log })),
      bedrock: keep(await startSimulatedBedrock({ host: o.host, s3, renderMs: o.renderMs, log })),
      fal: keep(await startFalUpstream({ ...common, log })),
      replicate: keep(await startReplicateUpstream({ ...common, log })),
      openrouter: keep(await startOpenRouterUpstream({ ...common, log })),
    };
    const upstreams: UpstreamConfig[] = [
      { name: o.simulated.name, kind: 'simulated', baseUrl: o.simulated.url, apiKey: o.apiKey },
      { name: demoUpstreamName('openai'), kind: 'openai', baseUrl: sims.openai.url, apiKey: o.apiKey },
      // The runtime client signs with the embedded stack's credentials, read from the environment.
      { name: demoUpstreamName('bedrock'), kind: 'bedrock', region: o.region, baseUrl: sims.bedrock.url },
      { name: demoUpstreamName('fal'), kind: 'fal', baseUrl: sims.fal.url, apiKey: o.apiKey },
      // No webhookSecret: the account's signing secret is asked of the API, as in AWS.
      { name: demoUpstreamName('replicate'), kind: 'replicate', baseUrl: sims.replicate.url, apiKey: o.apiKey },
      { name: demoUpstreamName('openrouter'), kind: 'openrouter', baseUrl: sims.openrouter.url, apiKey: o.apiKey },
    ];
    const models: Record<string, ModelEntry> = Object.fromEntries(seedModelIds.map((id) => [id, { routes: [{ upstream: o.simulated.name, model: id }] }]));
    for (const [id, { kind, model, ...rules }] of Object.entries(demoModels))
      models[id] = { ...rules, durations: [...rules.durations], aspectRatios: [...rules.aspectRatios], characters: false, routes: [{ upstream: demoUpstreamName(kind), model }] };
    return { sims, upstreams, models, close };
  } catch (error) {
    await close();
    throw error;
  }
}
