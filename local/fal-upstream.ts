import type { IncomingMessage, ServerResponse } from 'node:http';
import { JobSim, type JobSimDialect, type JobSimOptions, type SimJob } from './job-sim';
import { HttpError, readJson, sendJson } from './sim-kit';

/**
 * A real HTTP server speaking fal's queue API on loopback, for `npm start` and tests
 * (point `@fal-ai/client` at it through its request middleware):
 *
 *   POST /{model id}?fal_webhook=<url>          -> {request_id, response_url, status_url, cancel_url}
 *   GET  /{owner}/{app}/requests/{id}/status    -> 202 {status: IN_QUEUE | IN_PROGRESS}, 200 {status: COMPLETED, error?}
 *   GET  /{owner}/{app}/requests/{id}           -> {video: {url, content_type, file_name, file_size}}
 *   PUT  /{owner}/{app}/requests/{id}/cancel    -> 202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED
 *   GET  /files/{id}.mp4                        -> the rendered video
 *
 * `Authorization: Key <key>`. The webhook is `{request_id, gateway_request_id, status: OK |
 * ERROR, payload}`. Faults: the `sim:` tokens of `simulated-upstream.ts`.
 */

export interface FalUpstream {
  url: string;
  sim: JobSim;
  close(): Promise<void>;
}

const namespaces = new Set(['workflows', 'comfy']);
const appOf = (modelId: string) => {
  const parts = modelId.split('/');
  return parts.slice(0, namespaces.has(parts[0] ?? '') ? 3 : 2).join('/');
};

function requestUrls(sim: JobSim, job: SimJob) {
  const base = `${sim.url}/${appOf(job.model)}/requests/${job.id}`;
  return { response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
}

function statusBody(sim: JobSim, job: SimJob) {
  const urls = requestUrls(sim, job);
  switch (job.phase) {
    case 'queued':
      return { status: 'IN_QUEUE', queue_position: 0, ...urls };
    case 'running':
      return { status: sim.runningWord(job, 'IN_PROGRESS'), logs: [], ...urls };
    case 'succeeded':
      return { status: 'COMPLETED', logs: [], metrics: { inference_time: job.renderMs / 1000 }, ...urls };
    case 'failed':
      return { status: 'COMPLETED', logs: [], error: job.message, error_type: 'runner_error', ...urls };
    case 'canceled':
      return { status: 'COMPLETED', logs: [], error: 'the request was cancelled', error_type: 'request_cancelled', ...urls };
  }
}

const result = (job: SimJob) => ({
  video: { url: job.videoUrl, content_type: 'video/mp4', file_name: `${job.id}.mp4`, file_size: job.video.bytes },
  seed: 42,
});

async function submit(req: IncomingMessage, res: ServerResponse, path: URL, sim: JobSim): Promise<void> {
  const model = decodeURIComponent(path.pathname.slice(1));
  const body = await readJson(req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(422, 'invalid_input', 'the input must be a JSON object');
  const prompt = (body as { prompt?: unknown }).prompt;
  if (typeof prompt !== 'string' || !prompt.trim()) throw new HttpError(422, 'invalid_input', 'field required: prompt');
  const { duration, num_frames: frames, aspect_ratio: aspectRatio } = body as Record<string, unknown>;
  // Wan 2.2 asks for frames at 16 a second rather than a duration.
  const seconds = duration ?? (typeof frames === 'number' ? (frames - 1) / 16 : undefined);
  const callbackUrl = path.searchParams.get('fal_webhook') ?? undefined;
  const job = sim.accept(req, { model, prompt, body: body as Record<string, unknown>, callbackUrl, video: { seconds, aspectRatio } });
  if (!job) return; // a stalled submit is never answered
  sim.answerAccepted(res, job, 200, { request_id: job.id, gateway_request_id: job.id, status: 'IN_QUEUE', queue_position: 0, ...requestUrls(sim, job) });
}

export const falDialect: JobSimDialect = {
  authScheme: 'Key',
  idPrefix: 'fal_',
  // fal's validation errors are FastAPI's: a `detail` list of {loc, msg, type}.
  errorBody: (err) => (err.status === 422 ? { detail: [{ loc: ['body', 'prompt'], msg: err.message, type: err.code }] } : { detail: err.message }),
  rejectError: new HttpError(422, 'content_policy_violation', 'the prompt was flagged by the content checker'),
  route(req, res, path, sim) {
    const request = /^\/(.+)\/requests\/([^/]+?)(\/status|\/cancel)?$/.exec(path.pathname);
    if (!request) return req.method === 'POST' && path.pathname.length > 1 ? submit(req, res, path, sim) : undefined;
    return (async () => {
      const job = sim.polled(req, decodeURIComponent(request[2] ?? ''));
      if (appOf(job.model) !== request[1]) throw new HttpError(404, 'not_found', `request ${job.id} not found under ${request[1]}`);
      if (request[3] === '/cancel') {
        if (req.method !== 'PUT') throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed`);
        if (sim.cancel(job)) sendJson(res, 202, { status: 'CANCELLATION_REQUESTED' });
        else sendJson(res, 400, { status: 'ALREADY_COMPLETED' });
        return;
      }
      if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed`);
      if (request[3] === '/status') {
        sendJson(res, job.phase === 'queued' || job.phase === 'running' ? 202 : 200, statusBody(sim, job));
        return;
      }
      if (job.phase === 'queued' || job.phase === 'running') throw new HttpError(400, 'request_in_progress', 'the request is still in progress');
      if (job.phase !== 'succeeded') throw new HttpError(job.phase === 'canceled' ? 400 : 500, 'request_failed', job.message);
      sendJson(res, 200, result(job), { 'x-fal-request-id': job.id });
    })();
  },
  finalCallback(job) {
    return job.phase === 'succeeded'
      ? { body: { request_id: job.id, gateway_request_id: job.id, status: 'OK', payload: result(job) } }
      : { body: { request_id: job.id, gateway_request_id: job.id, status: 'ERROR', error: job.message, payload: { detail: job.message } } };
  },
};

export async function startFalUpstream(options: JobSimOptions = {}): Promise<FalUpstream> {
  const sim = await new JobSim(falDialect, options).start();
  return { url: sim.url, sim, close: () => sim.close() };
}
