import { submitBodySchema, type SubmitRequest } from '../contracts/submit';
import type { TaskRecord } from '../contracts/task';
import { backoffSeconds } from '../backoff';
import { callbackUrl } from '../callback-token';
import { ApiError, header, json, parseJsonBody, parseWith, type HttpEvent, type HttpResult } from '../http';
import { MAX_IDEMPOTENCY_KEY, fingerprint } from '../idempotency';
import { newTaskId } from '../ids';
import { logger } from '../logger';
import { checkUrl, clientUrlPolicy } from '../outbound';
import { UpstreamError } from '../providers/provider';
import type { Needs } from './deps';
import { afterFinish, nextCheck } from './finish';
import { startPolling } from './poll';

type SubmitNeeds = Needs<'config' | 'store' | 'keys' | 'idempotency' | 'provider' | 'queues' | 'callbackSecret'>;

/** `POST /v1/videos/generations`: validate, record, forward; the id is the client's once recorded. */
export async function submitTask(event: HttpEvent, d: SubmitNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const request = parseWith(submitBodySchema, parseJsonBody(event));
  checkPolicy(request, d);
  const headers: Record<string, string> = request.usedDeprecatedFields
    ? { deprecation: 'true', link: '</openapi.json>; rel="deprecation"' }
    : {};

  const now = d.store.now();
  let id = newTaskId(now);
  const idempotencyKey = header(event, 'idempotency-key');
  if (idempotencyKey !== undefined) {
    if (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)
      throw ApiError.invalid(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`, 'Idempotency-Key');
    const claim = await d.idempotency.claim(key.key_hash, idempotencyKey, fingerprint(request), id, now);
    if (claim.kind === 'conflict')
      throw new ApiError(409, 'idempotency_conflict', 'this Idempotency-Key was used with a different request body');
    if (claim.kind === 'replay') {
      id = claim.taskId;
      const existing = await d.store.get(id);
      // A replay of a request whose first attempt died before recording the task carries on below.
      if (existing) return answer(existing, headers);
    }
  }

  const task = newTask(id, key.key_hash, request, now, d.config);
  if (!(await d.store.create(task))) return answer((await d.store.get(id))!, headers);
  const outcome = await submitUpstream(task, d);
  return answer(outcome ?? task, headers);
}

/** The client's answer: its id, or the upstream's refusal when the task failed at once. */
function answer(task: TaskRecord, headers: Record<string, string>): HttpResult {
  if (task.state === 'failed' && task.error_code === 'upstream_rejected')
    throw new ApiError(400, 'upstream_rejected', task.error_message ?? 'the upstream refused the request', undefined, {
      ...headers,
      'x-task-id': task.id,
    });
  return json(200, { id: task.id }, headers);
}

function checkPolicy(request: SubmitRequest, d: Needs<'config'>) {
  if (d.config.DISABLED_MODELS.includes(request.model))
    throw ApiError.invalid(`model ${request.model} is not available on this gateway`, 'model');
  // Client URLs are fetched by the upstream and by our webhook sender.
  const policy = clientUrlPolicy(d.config.LOCAL_MODE);
  const urls: [string, string][] = [
    ...request.image_urls.map((u, i): [string, string] => [`image_urls[${i}]`, u]),
    ...request.characters.map((c, i): [string, string] => [`characters[${i}].url`, c.url]),
    ...(request.callback_url ? [['callback_url', request.callback_url] as [string, string]] : []),
  ];
  for (const [param, url] of urls) {
    const verdict = checkUrl(url, policy);
    if (!verdict.ok) throw ApiError.invalid(`${param}: ${verdict.reason}`, param);
  }
}

function newTask(id: string, owner: string, r: SubmitRequest, now: number, config: SubmitNeeds['config']): TaskRecord {
  return {
    id,
    owner,
    state: 'queued',
    progress: 0,
    model: r.model,
    upstream_model: config.MODEL_MAP[r.model] ?? r.model,
    prompt: r.prompt,
    aspect_ratio: r.aspect_ratio,
    duration: r.duration,
    image_urls: r.image_urls,
    characters: r.characters,
    callback_url: r.callback_url,
    created_at: now,
    updated_at: now,
    deadline_at: now + config.TASK_DEADLINE_SECONDS * 1000,
    submit_attempts: 0,
    open: 'open',
    // Should this request die before the upstream answers, the reconciler picks the task up.
    due_at: now + config.UPSTREAM_TIMEOUT_MS + 30_000,
    expires_at: Math.floor(now / 1000) + config.TASK_RETENTION_DAYS * 86400,
  };
}

/**
 * Hand a queued task to the upstream. Accepted: `submitted`. Refused for good: `failed`
 * with the upstream's reason. Down, slow or rate-limited: stays `queued`, due again after
 * a backoff (never sooner than the upstream's Retry-After).
 */
export async function submitUpstream(task: TaskRecord, d: Omit<SubmitNeeds, 'keys' | 'idempotency'>): Promise<TaskRecord | undefined> {
  const attempts = task.submit_attempts + 1;
  try {
    const { upstreamId } = await d.provider.submit({
      taskId: task.id,
      model: task.upstream_model,
      prompt: task.prompt,
      aspectRatio: task.aspect_ratio,
      duration: task.duration,
      imageUrls: task.image_urls,
      characters: task.characters,
      callbackUrl: callbackUrl(d.config.PUBLIC_BASE_URL, await d.callbackSecret(), task.id),
    });
    const now = d.store.now();
    const moved = await d.store.markSubmitted(task.id, upstreamId, nextCheck(task, now, d.config.SILENT_AFTER_SECONDS));
    logger.info('task submitted', { taskId: task.id, upstreamId, attempts });
    if (moved) await startPolling(moved, d.provider, d);
    return moved ?? (await d.store.get(task.id));
  } catch (error) {
    if (error instanceof UpstreamError && error.kind === 'rejected') {
      logger.info('upstream refused task', { taskId: task.id, status: error.status, reason: error.message });
      const failed = await d.store.markFailed(task, 'upstream_rejected', error.message);
      await afterFinish(failed, d);
      return failed ?? (await d.store.get(task.id));
    }
    const retryAfter = error instanceof UpstreamError ? error.retryAfterSeconds : undefined;
    const delay = backoffSeconds(attempts, { base: d.config.RESUBMIT_BASE_SECONDS, cap: 900, retryAfter });
    const reason = (error as Error).message;
    logger.warn('upstream unavailable, task stays queued', { taskId: task.id, attempts, retryInSeconds: delay, reason });
    const now = d.store.now();
    return d.store.deferSubmit(task.id, attempts, Math.min(now + delay * 1000, task.deadline_at), reason);
  }
}
