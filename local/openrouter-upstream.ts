import type { IncomingMessage, ServerResponse } from 'node:http';
import { JobSim, type JobSimDialect, type JobSimOptions, type SimJob } from './job-sim';
import { HttpError, readJson, sendJson } from './sim-kit';
import { serveVideo } from './simulated-upstream';

/**
 * A real HTTP server speaking OpenRouter's video generation API on loopback (the adapter's
 * `baseUrl` is `{url}/api/v1`):
 *
 *   POST /api/v1/videos                    {model, prompt, duration, aspect_ratio, callback_url, …}
 *                                          -> 202 {id, polling_url, status: "pending"}
 *   GET  /api/v1/videos/{id}               -> {id, polling_url, status, generation_id?, unsigned_urls?, usage?, error?}
 *   GET  /api/v1/videos/{id}/content?index=0   the video, with the key only
 *   GET  /files/{id}.mp4                   -> the same video at a signed storage URL (`urls`)
 *
 * `Authorization: Bearer <key>`. The webhook is `{type: "video.generation.<status>",
 * created_at, data: <the job>}`. Faults: the `sim:` tokens of `simulated-upstream.ts`.
 * A job's cost is `costPerSecond` times the duration it was asked for.
 */

export interface OpenRouterUpstreamOptions extends JobSimOptions {
  /** USD per requested second reported as `usage.cost`; default 0.05. */
  costPerSecond?: number;
}

export interface OpenRouterUpstream {
  /** The API root, `http://127.0.0.1:{port}/api/v1`. */
  url: string;
  sim: JobSim;
  close(): Promise<void>;
}

const statusWord: Record<SimJob['phase'], string> = {
  queued: 'pending',
  running: 'in_progress',
  succeeded: 'completed',
  failed: 'failed',
  canceled: 'cancelled',
};

export const openrouterCost = (job: SimJob, perSecond: number) => Math.round(Number(job.body.duration ?? 0) * perSecond * 1e6) / 1e6;

function view(sim: JobSim, job: SimJob, perSecond: number) {
  const polling = `/api/v1/videos/${job.id}`;
  return {
    id: job.id,
    polling_url: polling,
    status: job.phase === 'running' ? sim.runningWord(job, statusWord.running) : statusWord[job.phase],
    ...(job.phase === 'succeeded'
      ? {
          generation_id: `gen-${job.id}`,
          urls: [job.videoUrl],
          unsigned_urls: [`${polling}/content?index=0`],
          usage: { cost: openrouterCost(job, perSecond), is_byok: false },
        }
      : {}),
    ...(job.phase === 'failed' ? { error: job.message } : {}),
  };
}

async function submit(req: IncomingMessage, res: ServerResponse, sim: JobSim, perSecond: number): Promise<void> {
  const body = (await readJson(req)) as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null) throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
  const { model, prompt } = body;
  if (typeof model !== 'string' || !model) throw new HttpError(400, 'invalid_request', 'model is required');
  if (typeof prompt !== 'string' || !prompt.trim()) throw new HttpError(400, 'invalid_request', 'prompt is required');
  const callbackUrl = typeof body.callback_url === 'string' ? body.callback_url : undefined;
  const job = sim.accept(req, { model, prompt, body, callbackUrl, video: { seconds: body.duration, aspectRatio: body.aspect_ratio, size: body.size } });
  if (!job) return;
  sim.answerAccepted(res, job, 202, view(sim, job, perSecond));
}

function dialect(perSecond: number): JobSimDialect {
  return {
    authScheme: 'Bearer',
    idPrefix: 'or_',
    errorBody: (err) => ({ error: { code: err.status, message: err.message } }),
    rejectError: new HttpError(400, 'content_policy', 'the request was flagged by the moderation of the model provider'),
    route(req, res, path, sim) {
      const p = path.pathname;
      if (p === '/api/v1/videos' && req.method === 'POST') return submit(req, res, sim, perSecond);
      const one = /^\/api\/v1\/videos\/([^/]+)(\/content)?$/.exec(p);
      if (!one || req.method !== 'GET') return undefined;
      return (async () => {
        const job = sim.polled(req, decodeURIComponent(one[1]!));
        if (!one[2]) return sendJson(res, 200, view(sim, job, perSecond));
        if (job.phase !== 'succeeded') throw new HttpError(404, 'not_found', 'the video is not ready');
        await serveVideo(req, res, { id: job.id, video: job.video, mode: job.faults.video ?? 'ok' }, { log: sim.log });
      })();
    },
    finalCallback(job, sim) {
      const data = view(sim, job, perSecond);
      return { body: { type: `video.generation.${data.status}`, created_at: new Date().toISOString(), data } };
    },
  };
}

export async function startOpenRouterUpstream(options: OpenRouterUpstreamOptions = {}): Promise<OpenRouterUpstream> {
  const sim = await new JobSim(dialect(options.costPerSecond ?? 0.05), options).start();
  return { url: `${sim.url}/api/v1`, sim, close: () => sim.close() };
}
