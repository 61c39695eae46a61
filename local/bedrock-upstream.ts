import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { constants, createServer, type Http2ServerRequest as IncomingMessage, type Http2ServerResponse as ServerResponse, type ServerHttp2Session } from 'node:http2';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { videoSha256, videoStream, type VideoShape } from './mp4';
import { jobVideo, parseFaultTokens, type SimFaults } from './simulated-upstream';

/**
 * A simulated Amazon Bedrock runtime on loopback, speaking the REST protocol the real
 * `@aws-sdk/client-bedrock-runtime` sends, over HTTP/2 as that client always does
 * (cleartext here; point the client's `endpoint` at `url`):
 *
 *   POST /async-invoke                 StartAsyncInvoke  -> {invocationArn}
 *   GET  /async-invoke/{invocationArn} GetAsyncInvoke    -> {status: InProgress|Completed|Failed, …}
 *   GET  /async-invoke?…               ListAsyncInvokes  -> {asyncInvokeSummaries, nextToken}
 *
 * After its render time an invocation writes `output.mp4` (a real MP4 from local/mp4.ts)
 * into `{s3Uri}/{invocationId}/` in the embedded S3, through the S3 client it is given,
 * and only then reports `Completed`, as Bedrock does. A repeated `clientRequestToken`
 * returns the invocation it made the first time. Errors are the service's own
 * (`x-amzn-errortype` and `{message}`), so the SDK raises its modelled exceptions.
 *
 * Faults are the shared vocabulary of local/simulated-upstream.ts, from `sim:` tokens in
 * the prompt or server-wide:
 *   submit=reject   ValidationException, as Bedrock's content filters answer
 *   submit=429      ThrottlingException        submit=500  InternalServerException
 *   submit=503      ServiceUnavailableException submit=stall  never answered, no invocation
 *   submit=accept-drop|accept-504  the invocation is made, then the stream is reset or a
 *                   proxy's 504 page comes back: the ambiguous answers
 *   429 carries `retry-after` (sim:429=<s>), which Bedrock itself does not send
 *   render=fail     Failed with a failureMessage; render=stall stays InProgress; render=<ms>
 *   state=<word>    that status word while rendering (state=weird: "queued_for_gpu")
 *   video=not-video an HTML page as output.mp4; video=truncated the first half of the MP4;
 *   video=oversized a large MP4 (bytes=<n> sets the size); video=gone Completed, nothing written
 *   poll=500|404    GetAsyncInvoke of this invocation fails
 * Callback faults have no meaning here (Bedrock never calls back), nor do chunked or
 * stalled downloads (the archive copies inside S3).
 *
 * Models: `luma.ray-v2:0` (its documented input is checked); the retired Nova Reel ids
 * answer ResourceNotFoundException (end of life); any other id ValidationException.
 */

export interface SimulatedBedrockOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Where invocations write their output (the embedded S3). */
  s3: S3Client;
  /** Time from submit to the output being written; default 3000. */
  renderMs?: number;
  faults?: SimFaults;
  /** Size of `oversized` videos when the task names no `bytes`; default 64 MiB. */
  oversizedBytes?: number;
  /** The account id in ARNs. */
  accountId?: string;
  log?: (msg: string, fields?: object) => void;
}

export type BedrockInvocationStatus = 'InProgress' | 'Completed' | 'Failed';

export interface SimInvocation {
  invocationArn: string;
  invocationId: string;
  modelId: string;
  modelArn: string;
  clientRequestToken: string | undefined;
  modelInput: Record<string, unknown>;
  prompt: string;
  /** The invocation's folder, as GetAsyncInvoke reports it. */
  outputUri: string;
  status: BedrockInvocationStatus;
  failureMessage: string | undefined;
  faults: SimFaults;
  renderMs: number;
  video: VideoShape;
  submitTime: Date;
  lastModifiedTime: Date;
  endTime: Date | undefined;
  /** Bucket and key of `output.mp4`, once written. */
  written: { bucket: string; key: string } | undefined;
}

export interface SimBedrockStats {
  submitsReceived: number;
  submitsAccepted: number;
  submitsRefused: number;
  /** Submits answered with an earlier invocation (same clientRequestToken). */
  submitsRepeated: number;
  statusRequests: number;
  listRequests: number;
  outputsWritten: number;
}

export interface SimulatedBedrock {
  /** The endpoint for `new BedrockRuntimeClient({endpoint})`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  setFaults(faults: SimFaults): void;
  invocations: ReadonlyMap<string, Readonly<SimInvocation>>;
  stats: Readonly<SimBedrockStats>;
  /** The sha256 of the MP4 an invocation writes (by its ARN). */
  expectedSha256(invocationArn: string): string;
  close(): Promise<void>;
}

const DEFAULT_RENDER_MS = 3000;
const MAX_BODY_BYTES = 1024 * 1024;
const RETIRED_MODELS = new Set(['amazon.nova-reel-v1:0', 'amazon.nova-reel-v1:1']);
const TOKEN_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/;
const S3_URI_PATTERN = /^s3:\/\/([a-z0-9][.\-a-z0-9]{1,61}[a-z0-9])(\/.*)?$/;
const PROXY_TIMEOUT_PAGE = '<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>\n';
const NOT_VIDEO_PAGE = '<!doctype html><html><head><title>Error</title></head><body><h1>Internal error</h1></body></html>\n';

class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const validation = (message: string) => new ServiceError(400, 'ValidationException', message);

/** Luma Ray2's documented input (Bedrock user guide, "Luma AI models"). */
function checkLumaRay2(input: Record<string, unknown>): string {
  const allowed: Record<string, readonly unknown[] | undefined> = {
    aspect_ratio: ['1:1', '16:9', '9:16', '4:3', '3:4', '21:9', '9:21'],
    duration: ['5s', '9s'],
    resolution: ['540p', '720p'],
    loop: [true, false],
    prompt: undefined,
  };
  for (const key of Object.keys(input)) if (!(key in allowed)) throw validation(`Malformed input request: extraneous key [${key}] is not permitted, please reformat your input and try again.`);
  const { prompt } = input;
  if (typeof prompt !== 'string' || prompt.length < 1 || prompt.length > 5000)
    throw validation('Malformed input request: #/prompt: expected a string of 1 to 5000 characters, please reformat your input and try again.');
  for (const [key, values] of Object.entries(allowed)) {
    if (!values || input[key] === undefined) continue;
    if (!values.includes(input[key])) throw validation(`Malformed input request: #/${key}: ${JSON.stringify(input[key])} is not a valid enum value, please reformat your input and try again.`);
  }
  return prompt;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw validation('The request body is too large.');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ServiceError(400, 'SerializationException', 'The request body is not valid JSON.');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomBytes(16).toString('hex'),
    ...headers,
  });
  res.end(text);
}

/** The region the client signed for (SigV4 credential scope); Bedrock's ARNs carry it. */
function signedRegion(authorization: string | undefined): string | undefined {
  return /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/bedrock\/aws4_request/.exec(authorization ?? '')?.[1];
}

export async function startSimulatedBedrock(options: SimulatedBedrockOptions): Promise<SimulatedBedrock> {
  const log = options.log ?? (() => {});
  const defaultRenderMs = options.renderMs ?? DEFAULT_RENDER_MS;
  const accountId = options.accountId ?? '000000000000';
  let serverFaults: SimFaults = { ...options.faults };
  const invocations = new Map<string, SimInvocation>();
  const byToken = new Map<string, SimInvocation>();
  const stats: SimBedrockStats = { submitsReceived: 0, submitsAccepted: 0, submitsRefused: 0, submitsRepeated: 0, statusRequests: 0, listRequests: 0, outputsWritten: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const sessions = new Set<ServerHttp2Session>();
  let closing = false;

  const later = (ms: number, fn: () => void): void => {
    if (closing) return;
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const finish = (inv: SimInvocation, status: 'Completed' | 'Failed', failureMessage?: string) => {
    inv.status = status;
    inv.failureMessage = failureMessage;
    inv.lastModifiedTime = inv.endTime = new Date();
    log('invocation finished', { id: inv.invocationId, status, failureMessage });
  };

  const writeOutput = async (inv: SimInvocation): Promise<void> => {
    const target = S3_URI_PATTERN.exec(inv.outputUri)!;
    const bucket = target[1]!;
    const key = `${(target[2] ?? '').replace(/^\/+/, '')}/output.mp4`;
    const mode = inv.faults.video ?? 'ok';
    let body: Buffer | ReturnType<ReturnType<typeof videoStream>['stream']>;
    let length: number;
    let contentType = 'video/mp4';
    if (mode === 'not-video') {
      body = Buffer.from(NOT_VIDEO_PAGE);
      length = body.length;
      contentType = 'text/html';
    } else {
      const video = videoStream({ taskId: inv.invocationId, ...inv.video });
      length = mode === 'truncated' ? Math.max(1, Math.floor(video.size / 2)) : video.size;
      body = video.stream({ start: 0, end: length - 1 });
    }
    await options.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: length, ContentType: contentType }));
    inv.written = { bucket, key };
    stats.outputsWritten++;
  };

  const render = (inv: SimInvocation): void => {
    if (inv.faults.render === 'stall') return;
    later(inv.renderMs, () => {
      if (inv.faults.render === 'fail') return finish(inv, 'Failed', 'Internal error: the video could not be generated (simulated render failure).');
      if (inv.faults.video === 'gone') return finish(inv, 'Completed');
      writeOutput(inv).then(
        () => finish(inv, 'Completed'),
        (error: Error) => {
          if (!closing) finish(inv, 'Failed', `Could not write the output to ${inv.outputUri}: ${error.message}`);
        },
      );
    });
  };

  const handleStart = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.submitsReceived++;
    const body = await readJson(req);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw validation('The request body must be a JSON object.');
    const { modelId, modelInput, outputDataConfig, clientRequestToken } = body as Record<string, unknown>;
    if (typeof modelId !== 'string' || modelId === '') throw validation('1 validation error detected: Value null at \'modelId\' failed to satisfy constraint: Member must not be null');
    if (clientRequestToken !== undefined && (typeof clientRequestToken !== 'string' || clientRequestToken.length > 256 || !TOKEN_PATTERN.test(clientRequestToken)))
      throw validation(`1 validation error detected: Value '${String(clientRequestToken)}' at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9])*`);
    const s3Uri = (outputDataConfig as { s3OutputDataConfig?: { s3Uri?: unknown } } | undefined)?.s3OutputDataConfig?.s3Uri;
    if (typeof s3Uri !== 'string' || !S3_URI_PATTERN.test(s3Uri)) throw validation('1 validation error detected: Value at \'outputDataConfig.s3OutputDataConfig.s3Uri\' failed to satisfy constraint: Member must satisfy regular expression pattern: s3://[a-z0-9][\\.\\-a-z0-9]{1,61}[a-z0-9](/.*)?');
    if (typeof modelInput !== 'object' || modelInput === null || Array.isArray(modelInput)) throw validation('Malformed input request: modelInput must be a JSON object.');
    if (RETIRED_MODELS.has(modelId)) throw new ServiceError(404, 'ResourceNotFoundException', 'This model version has reached the end of its life. Please refer to the AWS documentation for more details.');
    if (modelId !== 'luma.ray-v2:0') throw validation('The provided model identifier is invalid.');
    const input = modelInput as Record<string, unknown>;
    const prompt = checkLumaRay2(input);

    if (typeof clientRequestToken === 'string') {
      const earlier = byToken.get(clientRequestToken);
      if (earlier) {
        stats.submitsRepeated++;
        log('repeated clientRequestToken: the earlier invocation', { id: earlier.invocationId });
        return sendJson(res, 200, { invocationArn: earlier.invocationArn });
      }
    }

    const tokens = parseFaultTokens(prompt);
    if (tokens.unknown.length > 0) log('unknown sim tokens ignored', { tokens: tokens.unknown });
    const faults: SimFaults = { ...serverFaults, ...tokens.faults };
    switch (faults.submit) {
      case 'reject':
        throw validation('This request has been blocked by our content filters. Please adjust your text prompt to submit a new request.');
      case '429':
        throw new ServiceError(429, 'ThrottlingException', 'Too many requests, please wait before trying again.', { 'retry-after': String(faults.retryAfter ?? 1) });
      case '500':
        throw new ServiceError(500, 'InternalServerException', 'The server encountered an internal error while processing the request.');
      case '503':
        throw new ServiceError(503, 'ServiceUnavailableException', 'The service is temporarily unable to handle the request.');
      case 'stall':
        log('submit stalled', { prompt });
        return; // never answered; close() or the client ends it
    }

    const region = signedRegion(req.headers.authorization) ?? 'us-east-1';
    const invocationId = randomBytes(6).toString('hex');
    const now = new Date();
    const inv: SimInvocation = {
      invocationArn: `arn:aws:bedrock:${region}:${accountId}:async-invoke/${invocationId}`,
      invocationId,
      modelId,
      modelArn: `arn:aws:bedrock:${region}::foundation-model/${modelId}`,
      clientRequestToken: typeof clientRequestToken === 'string' ? clientRequestToken : undefined,
      modelInput: input,
      prompt,
      outputUri: `${s3Uri.replace(/\/+$/, '')}/${invocationId}`,
      status: 'InProgress',
      failureMessage: undefined,
      faults,
      renderMs: faults.renderMs ?? defaultRenderMs,
      video: jobVideo(invocationId, { seconds: input.duration, aspectRatio: input.aspect_ratio }, faults, options.oversizedBytes),
      submitTime: now,
      lastModifiedTime: now,
      endTime: undefined,
      written: undefined,
    };
    invocations.set(inv.invocationArn, inv);
    if (inv.clientRequestToken) byToken.set(inv.clientRequestToken, inv);
    stats.submitsAccepted++;
    log('invocation accepted', { id: invocationId, modelId, faults });
    render(inv);
    // The invocation exists either way; these are the ambiguous answers a client may get.
    const submit: string | undefined = faults.submit;
    if (submit === 'accept-drop') return void res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    if (submit === 'accept-504') {
      res.writeHead(504, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(PROXY_TIMEOUT_PAGE) });
      return void res.end(PROXY_TIMEOUT_PAGE);
    }
    sendJson(res, 200, { invocationArn: inv.invocationArn });
  };

  const view = (inv: SimInvocation) => ({
    invocationArn: inv.invocationArn,
    modelArn: inv.modelArn,
    clientRequestToken: inv.clientRequestToken,
    status: inv.status === 'InProgress' ? (inv.faults.state ?? 'InProgress') : inv.status,
    failureMessage: inv.failureMessage,
    submitTime: inv.submitTime.toISOString(),
    lastModifiedTime: inv.lastModifiedTime.toISOString(),
    endTime: inv.endTime?.toISOString(),
    outputDataConfig: { s3OutputDataConfig: { s3Uri: inv.outputUri } },
  });

  const handleGet = (res: ServerResponse, arn: string): void => {
    stats.statusRequests++;
    const inv = invocations.get(arn);
    if (!inv || inv.faults.poll === '404') throw new ServiceError(404, 'ResourceNotFoundException', `The specified invocation ARN ${arn} was not found.`);
    if (inv.faults.poll === '500') throw new ServiceError(500, 'InternalServerException', 'The server encountered an internal error while processing the request.');
    sendJson(res, 200, view(inv));
  };

  const handleList = (res: ServerResponse, query: URLSearchParams): void => {
    stats.listRequests++;
    const time = (name: string) => {
      const v = query.get(name);
      if (v === null) return undefined;
      const t = Date.parse(v);
      if (Number.isNaN(t)) throw validation(`Value '${v}' at '${name}' is not a valid timestamp.`);
      return t;
    };
    const after = time('submitTimeAfter');
    const before = time('submitTimeBefore');
    const status = query.get('statusEquals');
    const max = Number(query.get('maxResults') ?? 10);
    if (!Number.isInteger(max) || max < 1 || max > 1000) throw validation('Value at \'maxResults\' failed to satisfy constraint: Member must have value between 1 and 1000');
    const order = query.get('sortOrder') ?? 'Descending';
    const start = query.get('nextToken') ? Number(Buffer.from(query.get('nextToken')!, 'base64url').toString()) : 0;
    const all = [...invocations.values()]
      .filter((i) => (after === undefined || i.submitTime.getTime() > after) && (before === undefined || i.submitTime.getTime() < before) && (!status || i.status === status))
      .sort((a, b) => (a.submitTime.getTime() - b.submitTime.getTime()) * (order === 'Ascending' ? 1 : -1));
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? Buffer.from(String(start + max)).toString('base64url') : undefined;
    sendJson(res, 200, { asyncInvokeSummaries: page.map(view), nextToken: next });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://bedrock');
    const method = req.method ?? 'GET';
    if (!/^AWS4-HMAC-SHA256 /.test(req.headers.authorization ?? '')) throw new ServiceError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (url.pathname === '/async-invoke' && method === 'POST')
      return handleStart(req, res).catch((err: unknown) => {
        stats.submitsRefused++;
        throw err;
      });
    if (url.pathname === '/async-invoke' && method === 'GET') return handleList(res, url.searchParams);
    const get = /^\/async-invoke\/(.+)$/.exec(url.pathname);
    if (get && method === 'GET') return handleGet(res, decodeURIComponent(get[1]!));
    throw new ServiceError(404, 'UnknownOperationException', `no operation for ${method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const e = err instanceof ServiceError ? err : new ServiceError(500, 'InternalServerException', 'The server encountered an internal error while processing the request.');
      if (!(err instanceof ServiceError)) log('request failed', { url: req.url, error: (err as Error).message });
      if (res.headersSent) res.stream.destroy();
      else sendJson(res, e.status, { message: e.message }, { 'x-amzn-errortype': e.type, ...e.headers });
    });
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('simulated Bedrock has no TCP address');
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log('simulated Bedrock listening', { url });

  let closed: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    setFaults(faults: SimFaults) {
      serverFaults = { ...faults };
    },
    invocations,
    stats,
    expectedSha256(invocationArn: string) {
      const inv = invocations.get(invocationArn);
      if (!inv) throw new Error(`no invocation ${invocationArn}`);
      return videoSha256({ taskId: inv.invocationId, ...inv.video });
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      });
      return closed;
    },
  };
}
