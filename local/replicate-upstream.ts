import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { JobSim, type JobSimDialect, type JobSimOptions, type SimJob } from './job-sim';
import { HttpError, readJson, sendJson } from './sim-kit';

/**
 * A real HTTP server speaking Replicate's predictions API on loopback (the adapter's and the
 * `replicate` client's `baseUrl` is `{url}/v1`):
 *
 *   POST /v1/models/{owner}/{name}/predictions   {input, webhook, webhook_events_filter}  -> 201 prediction
 *   POST /v1/predictions                         {version, input, webhook, …}             -> 201 prediction
 *   GET  /v1/predictions/{id}                    -> prediction
 *   POST /v1/predictions/{id}/cancel             -> prediction
 *   GET  /v1/webhooks/default/secret             -> {key: the signing secret}
 *   GET  /files/{id}.mp4                         -> the rendered video (the prediction's output)
 *
 * `Authorization: Bearer <key>`. The "completed" webhook carries the prediction, signed per
 * Standard Webhooks with `webhookSecret`. Faults: the `sim:` tokens of `simulated-upstream.ts`.
 */

export interface ReplicateUpstreamOptions extends JobSimOptions {
  /** The account's signing secret (`whsec_` + base64); one is made when none is given. */
  webhookSecret?: string;
}

export interface ReplicateUpstream {
  /** The API root, `http://127.0.0.1:{port}/v1`. */
  url: string;
  webhookSecret: string;
  sim: JobSim;
  close(): Promise<void>;
}

const statusWord: Record<SimJob['phase'], string> = {
  queued: 'starting',
  running: 'processing',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
};

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function prediction(sim: JobSim, job: SimJob) {
  const [model, version] = job.model.split(':');
  const base = `${sim.url}/v1/predictions/${job.id}`;
  return {
    id: job.id,
    model,
    version: version ?? 'hidden',
    input: job.body.input,
    logs: job.phase === 'queued' ? '' : `rendering ${job.prompt.slice(0, 40)}\n`,
    output: job.phase === 'succeeded' ? job.videoUrl : null,
    data_removed: false,
    error: job.phase === 'failed' ? job.message : null,
    status: job.phase === 'running' ? sim.runningWord(job, statusWord.running) : statusWord[job.phase],
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.finishedAt),
    urls: { get: base, cancel: `${base}/cancel`, web: `https://replicate.com/p/${job.id}` },
    ...(job.phase === 'succeeded' ? { metrics: { predict_time: job.renderMs / 1000 } } : {}),
  };
}

async function create(req: IncomingMessage, res: ServerResponse, sim: JobSim, model: string | undefined): Promise<void> {
  const body = (await readJson(req)) as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null) throw new HttpError(422, 'invalid', 'the body must be a JSON object');
  const version = typeof body.version === 'string' ? body.version : undefined;
  if (!model && !version) throw new HttpError(422, 'invalid', 'version is required');
  const input = body.input as { prompt?: unknown; duration?: unknown; aspect_ratio?: unknown } | undefined;
  if (typeof input?.prompt !== 'string' || !input.prompt.trim()) throw new HttpError(422, 'invalid', '- input: prompt is required');
  const webhook = typeof body.webhook === 'string' ? body.webhook : undefined;
  const job = sim.accept(req, { model: model ?? `unknown/model:${version}`, prompt: input.prompt, body, callbackUrl: webhook, video: { seconds: input.duration, aspectRatio: input.aspect_ratio } });
  if (!job) return;
  sim.answerAccepted(res, job, 201, prediction(sim, job));
}

function dialect(secret: string): JobSimDialect {
  const signer = new Webhook(secret);
  return {
    authScheme: 'Bearer',
    idPrefix: 'rp_',
    errorBody: (err) => ({ title: err.code, detail: err.message, status: err.status }),
    rejectError: new HttpError(422, 'input_rejected', 'the input was flagged as sensitive (E005)'),
    route(req, res, path, sim) {
      const p = path.pathname;
      const byModel = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(p);
      if (byModel && req.method === 'POST') return create(req, res, sim, `${decodeURIComponent(byModel[1]!)}/${decodeURIComponent(byModel[2]!)}`);
      if (p === '/v1/predictions' && req.method === 'POST') return create(req, res, sim, undefined);
      if (p === '/v1/webhooks/default/secret' && req.method === 'GET')
        return (async () => {
          sim.checkKey(req);
          sendJson(res, 200, { key: secret });
        })();
      const one = /^\/v1\/predictions\/([^/]+)(\/cancel)?$/.exec(p);
      if (!one) return undefined;
      return (async () => {
        const job = sim.polled(req, decodeURIComponent(one[1]!));
        if (one[2]) {
          if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed`);
          sim.cancel(job);
        } else if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', `${req.method} not allowed`);
        sendJson(res, 200, prediction(sim, job));
      })();
    },
    finalCallback(job, sim) {
      const body = JSON.stringify(prediction(sim, job));
      const id = `msg_${randomBytes(12).toString('hex')}`;
      const at = new Date();
      return {
        body,
        headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signer.sign(id, at, body) },
      };
    },
  };
}

export async function startReplicateUpstream(options: ReplicateUpstreamOptions = {}): Promise<ReplicateUpstream> {
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('base64')}`;
  const sim = await new JobSim(dialect(webhookSecret), options).start();
  return { url: `${sim.url}/v1`, webhookSecret, sim, close: () => sim.close() };
}
