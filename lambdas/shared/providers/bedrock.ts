import {
  BedrockRuntimeClient,
  GetAsyncInvokeCommand,
  ListAsyncInvokesCommand,
  StartAsyncInvokeCommand,
  type BedrockRuntimeClientConfig,
  type GetAsyncInvokeCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import type { ProviderKind } from '../catalog';
import { bedrockOutputUri, bedrockVideoFile } from '../bedrock-output';
import { bedrockModelInput } from './bedrock-models';
import { UpstreamError, type CreateProvider, type UpstreamJob, type UpstreamPhase, type UpstreamProvider, type UpstreamStatus } from './provider';

export interface BedrockOptions {
  /** The operator's name for this upstream. */
  name: string;
  /** The region the models run in (the upstream entry's `region`). */
  region: string;
  /** The gateway's bucket: Bedrock writes each task's video under `bedrock/{taskId}/` in it. */
  bucket: string;
  timeoutMs: number;
  /** The runtime endpoint, when not Bedrock's own (the simulator locally, a VPC endpoint). */
  endpoint?: string;
  /** Unset in AWS: the function's IAM role. */
  credentials?: BedrockRuntimeClientConfig['credentials'];
}

const phases: Record<string, UpstreamPhase> = { InProgress: 'running', Completed: 'succeeded', Failed: 'failed' };

/** How far before the submit findJob looks, for clock skew between us and Bedrock. */
const FIND_SLACK_MS = 5 * 60_000;
const FIND_MAX_PAGES = 10;

/**
 * Amazon Bedrock's async video models: `StartAsyncInvoke`, then `GetAsyncInvoke` on a
 * cadence (Bedrock never calls back). Bedrock writes the video into the gateway's own
 * bucket, so `status()` reports it as `s3://bucket/key` and the archive copies it there.
 * Every submit carries a `clientRequestToken` made from the task id: a resubmit after an
 * ambiguous answer gets the same invocation back instead of a second paid one.
 */
export class BedrockProvider implements UpstreamProvider {
  readonly name: string;
  readonly kind: ProviderKind = 'bedrock';
  readonly callsBack = false;
  private readonly client: BedrockRuntimeClient;

  constructor(private readonly options: BedrockOptions) {
    this.name = options.name;
    const { timeoutMs } = options;
    this.client = new BedrockRuntimeClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      // The gateway's own backoff and failover decide what happens next, not SDK retries.
      maxAttempts: 1,
      // The client speaks HTTP/2; a stream silent this long ends the call (the abort signal
      // below bounds the whole exchange).
      requestHandler: { requestTimeout: timeoutMs },
    });
  }

  async submit(job: UpstreamJob): Promise<{ upstreamId: string }> {
    const modelInput = bedrockModelInput(job);
    const command = new StartAsyncInvokeCommand({
      modelId: job.model,
      modelInput,
      outputDataConfig: { s3OutputDataConfig: { s3Uri: bedrockOutputUri(this.options.bucket, job.taskId) } },
      clientRequestToken: bedrockRequestToken(job.taskId),
    });
    try {
      const out = await this.client.send(command, { abortSignal: AbortSignal.timeout(this.options.timeoutMs) });
      if (!out.invocationArn) throw new UpstreamError('unavailable', 'Bedrock accepted the invocation but sent no invocationArn');
      return { upstreamId: out.invocationArn };
    } catch (error) {
      throw classifyBedrockError(error, 'submit', this.options.timeoutMs);
    }
  }

  async status(upstreamId: string): Promise<UpstreamStatus> {
    let out: GetAsyncInvokeCommandOutput;
    try {
      out = await this.client.send(new GetAsyncInvokeCommand({ invocationArn: upstreamId }), { abortSignal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      throw classifyBedrockError(error, 'read', this.options.timeoutMs);
    }
    return bedrockStatus(out);
  }

  async parseCallback(): Promise<UpstreamStatus> {
    throw new UpstreamError('rejected', 'Bedrock never calls back; its tasks are polled');
  }

  async findJob(job: UpstreamJob, submittedAt: number): Promise<string | null> {
    const token = bedrockRequestToken(job.taskId);
    let nextToken: string | undefined;
    try {
      for (let page = 0; page < FIND_MAX_PAGES; page++) {
        const out = await this.client.send(
          new ListAsyncInvokesCommand({
            submitTimeAfter: new Date(submittedAt - FIND_SLACK_MS),
            sortBy: 'SubmissionTime',
            sortOrder: 'Ascending',
            maxResults: 1000,
            nextToken,
          }),
          { abortSignal: AbortSignal.timeout(this.options.timeoutMs) },
        );
        const found = out.asyncInvokeSummaries?.find((s) => s.clientRequestToken === token);
        if (found?.invocationArn) return found.invocationArn;
        nextToken = out.nextToken;
        if (!nextToken) return null;
      }
    } catch (error) {
      throw classifyBedrockError(error, 'read', this.options.timeoutMs);
    }
    throw new UpstreamError('unavailable', `Bedrock lists more than ${FIND_MAX_PAGES} pages of invocations since the submit; the gateway could not make sure it holds none for ${job.taskId}`);
  }
}

/**
 * Bedrock takes no key: the function's IAM role (locally, the embedded stack's credentials
 * in the environment). The entry's `baseUrl`, when set, aims the client at another runtime
 * endpoint (the simulator on loopback, a VPC endpoint).
 */
export const createProvider: CreateProvider = ({ upstream, timeoutMs, config }) =>
  new BedrockProvider({ name: upstream.name, region: upstream.region!, bucket: config.BUCKET_NAME, timeoutMs, endpoint: upstream.baseUrl });

/** Bedrock's idempotency token for a task (letters, digits and single dashes). */
export const bedrockRequestToken = (taskId: string) => taskId.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 256);

/** A `GetAsyncInvoke` answer in the gateway's terms. */
export function bedrockStatus(out: Pick<GetAsyncInvokeCommandOutput, 'invocationArn' | 'status' | 'failureMessage' | 'outputDataConfig'>): UpstreamStatus {
  const state = out.status ?? 'unknown';
  const phase = phases[state] ?? 'running';
  const base = { upstreamId: out.invocationArn, state, progress: phase === 'succeeded' ? 100 : 0, message: out.failureMessage ?? '' };
  if (phase !== 'succeeded') return { ...base, phase };
  const folder = out.outputDataConfig?.s3OutputDataConfig?.s3Uri;
  if (!folder) return { ...base, phase: 'failed', progress: 0, message: 'Bedrock reported the invocation Completed but named no output location' };
  return { ...base, phase, videoUrl: `${folder.replace(/\/+$/, '')}/${bedrockVideoFile}` };
}

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  /** HTTP/2 wraps the socket's error: a stream cancelled because the connection never opened. */
  cause?: { code?: string };
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** Errors after which Bedrock certainly holds no job and another route may go at once. */
const unavailableNames = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'ServiceQuotaExceededException',
  'InternalServerException',
  'AccessDeniedException',
  'ResourceNotFoundException',
  'ModelNotReadyException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'CredentialsProviderError',
]);
/** Network failures that happen before a request is sent. */
const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * An SDK error as the gateway's three kinds. For reads (`status`, `findJob`) every failure
 * is `unavailable`: ask again later. For a submit: content filtering and bad input are
 * `rejected`; throttling, outages, quota, our credentials and unknown or retired models are
 * `unavailable`; a timeout or dropped connection after sending, a proxy's 502/504, or a
 * conflict on our idempotency token are `ambiguous` (findJob settles them).
 */
export function classifyBedrockError(error: unknown, call: 'submit' | 'read', timeoutMs: number): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const e = (error ?? {}) as SdkError;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const said = (e.message ?? '').slice(0, 400);
  const answered = e.$fault !== undefined || status !== undefined;
  if (answered) {
    // No `$fault`: the SDK could not read the body, so it came from something in front of Bedrock.
    const message = (e.$fault ? `upstream answered ${status ?? '?'}: ${name}: ${said}` : `upstream answered ${status ?? '?'} with a body that is not Bedrock's`).slice(0, 500);
    if (call === 'read') return new UpstreamError('unavailable', message, status, name);
    const retryAfter = Number(e.$response?.headers?.['retry-after']);
    if (name === 'ThrottlingException' && retryAfter > 0) return new UpstreamError('unavailable', message, status, name, retryAfter);
    if (name === 'ValidationException')
      // An unknown model id is the route's fault, not the request's: the next route may serve it.
      return new UpstreamError(/model identifier|model id|end of its life/i.test(said) ? 'unavailable' : 'rejected', message, status, name);
    if (name === 'ConflictException') return new UpstreamError('ambiguous', message, status, name);
    if (unavailableNames.has(name)) return new UpstreamError('unavailable', message, status, name);
    if (status === 502 || status === 504 || status === 524) return new UpstreamError('ambiguous', message, status, name);
    if (status === undefined || status >= 500 || [401, 403, 404, 408, 429].includes(status)) return new UpstreamError('unavailable', message, status, name);
    return new UpstreamError('rejected', message, status, name);
  }
  const notSent = notSentCodes.has(e.code ?? '') || notSentCodes.has(e.cause?.code ?? '') || unavailableNames.has(name);
  if (call === 'read' || notSent) return new UpstreamError('unavailable', `upstream unreachable: ${said || name}`.slice(0, 500), undefined, e.cause?.code ?? e.code ?? name);
  const timedOut = name === 'TimeoutError' || name === 'AbortError';
  return new UpstreamError(
    'ambiguous',
    timedOut ? `upstream did not answer within ${timeoutMs} ms` : `the connection to the upstream broke after sending: ${said || name}`.slice(0, 500),
    undefined,
    e.code ?? name,
  );
}
