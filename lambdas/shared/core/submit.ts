import { submitBodySchema, type SubmitRequest } from '../contracts/submit';
import type { TaskRecord } from '../contracts/task';
import type { ApiKeyRecord } from '../api-keys';
import { backoffSeconds } from '../backoff';
import { callbackUrl } from '../callback-token';
import { ApiError, header, json, parseJsonBody, parseWith, type HttpEvent, type HttpResult } from '../http';
import { MAX_IDEMPOTENCY_KEY, fingerprint } from '../idempotency';
import { newTaskId } from '../ids';
import { logger } from '../logger';
import { submitLeaseMs } from '../task-store';
import { checkUrl, clientUrlPolicy, refusedResolution, systemResolver } from '../outbound';
import { modelOf, type RouteConfig } from '../catalog';
import { effectiveLimits } from '../contracts/limits';
import { UpstreamError, type UpstreamJob, type UpstreamProvider } from '../providers/provider';
import { routeTask, type RouteResult, type UpstreamRegistry } from '../router';
import { clientMessage, upstreamIdentity } from '../white-label';
import type { Needs } from './deps';
import { afterFinish, nextCheck } from './finish';
import { startPolling } from './poll';
import { metric, record, unit } from '../metrics';

export type SubmitNeeds = Needs<'config' | 'store' | 'usage' | 'keys' | 'idempotency' | 'upstreams' | 'circuits' | 'queues' | 'callbackSecret' | 'resolve' | 'inputs'>;
type UpstreamNeeds = Omit<SubmitNeeds, 'keys' | 'idempotency'>;

/** `POST /v1/videos/generations`: validate, record, forward; the id is the client's once recorded. */
export async function submitTask(event: HttpEvent, d: SubmitNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const request = parseWith(submitBodySchema(d.config.catalog.models), parseJsonBody(event));
  const headers: Record<string, string> = request.usedDeprecatedFields
    ? { deprecation: 'true', link: '</openapi.json>; rel="deprecation"' }
    : {};
  const task = refusedAtOnce(await createTask(event, key, request, d), headers);
  return json(200, { id: task.id }, headers);
}

/** What a dialect adds to the task beside the seed request, and what a remix takes of its original (`remix.ts`). */
export type TaskExtras = Partial<Pick<TaskRecord, 'dialect' | 'size' | 'input_image' | 'remixed_from' | 'remix_source_job' | 'upstream' | 'route' | 'upstream_model'>>;

/**
 * The one way a task is made, whatever the dialect: the gateway's policy on the request,
 * the Idempotency-Key, the key's limits, the record, then the upstream. Answers the task as
 * it stands after the first hand-off (or as recorded by the request an Idempotency-Key replays).
 */
export async function createTask(
  event: HttpEvent,
  key: ApiKeyRecord,
  request: SubmitRequest,
  d: SubmitNeeds,
  extras: TaskExtras = {},
  /** What a replay must match, when the request holds something minted per attempt (an uploaded image's link). */
  identity: unknown = { ...request, ...extras },
): Promise<TaskRecord> {
  await checkPolicy(request, d);
  const now = d.store.now();
  let id = newTaskId(now);
  const idempotencyKey = header(event, 'idempotency-key');
  if (idempotencyKey !== undefined) {
    if (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)
      throw ApiError.invalid(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`, 'Idempotency-Key');
    const claim = await d.idempotency.claim(key.key_hash, idempotencyKey, fingerprint(identity), id, now);
    if (claim.kind === 'conflict')
      throw new ApiError(409, 'idempotency_conflict', 'this Idempotency-Key was used with a different request body');
    if (claim.kind === 'replay') {
      id = claim.taskId;
      const existing = await d.store.get(id);
      // A replay of a request whose first attempt died before recording the task carries on below.
      if (existing) return existing;
    }
  }

  const task: TaskRecord = { ...newTask(id, key.key_hash, request, now, d.config), ...extras };
  // The key's default webhook goes into the task now, from the key record authentication has
  // just read: the task's end knows it owes a webhook without reading the key, and notify's one
  // key read (for the secret) stays its only one. A later change of the default is for later tasks.
  if (task.callback_url === undefined && key.webhook_url !== undefined) task.callback_url = key.webhook_url;
  // The key's limits, and its seconds reserved, before anything of the task is written: a 429 leaves no trace.
  const reserved = await d.usage.reserve(task, effectiveLimits(key.limits, d.config.DEFAULT_LIMITS), (taskId) => d.store.get(taskId));
  if (reserved.active) task.usage_active = true;
  // Writing the task is its first submit claim: a reconcile run finds it held until the lease ends.
  let created: boolean;
  try {
    created = await d.store.create(task);
  } catch (error) {
    // The write may have landed all the same: only a task surely not written gives its reservation back.
    if ((await d.store.get(id).catch(() => task)) === undefined) await d.usage.withdraw(task).catch(() => undefined);
    throw error;
  }
  if (!created) return (await d.store.get(id))!;
  record(metric.tasksSubmitted, 1, unit.Count, { model: task.model });
  const outcome = await submitUpstream(task, d, { heldLease: task.submit_lease_until });
  return outcome ?? task;
}

/** The task the client is answered with, or the upstream's refusal (400) when it failed at once. */
export function refusedAtOnce(task: TaskRecord, headers: Record<string, string> = {}): TaskRecord {
  if (task.state === 'failed' && task.error_code === 'upstream_rejected')
    throw new ApiError(400, 'upstream_rejected', task.error_message ?? 'the upstream refused the request', undefined, {
      ...headers,
      'x-task-id': task.id,
    });
  return task;
}

/** How long submit waits for the client URLs' host names to resolve; slower names pass (see `refusedResolution`). */
export const SUBMIT_RESOLVE_TIMEOUT_MS = 1500;

/**
 * The operator's and the gateway's rules for a request. Client URLs are fetched by the
 * upstream and by our webhook sender, so they must name public hosts, by the URL and by
 * what its name resolves to now (all names at once, each within a short timeout). The
 * local runtime, offline and on loopback, resolves nothing unless it is given a resolver.
 */
async function checkPolicy(request: SubmitRequest, d: Needs<'config' | 'resolve'>) {
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
  const resolve = d.resolve ?? (d.config.LOCAL_MODE ? undefined : systemResolver);
  if (!resolve) return;
  const refusals = await Promise.all(urls.map(([, url]) => refusedResolution(url, policy, { resolve, timeoutMs: SUBMIT_RESOLVE_TIMEOUT_MS })));
  const first = refusals.findIndex((r) => r !== undefined);
  if (first >= 0) throw ApiError.invalid(`${urls[first]![0]}: ${refusals[first]}`, urls[first]![0]);
}

function newTask(id: string, owner: string, r: SubmitRequest, now: number, config: SubmitNeeds['config']): TaskRecord {
  // A remix of a model since dropped from the catalog names its original's route in its extras.
  const firstRoute = modelOf(config.catalog.models, r.model)?.routes[0];
  const lease = submitLeaseMs(config.UPSTREAM_TIMEOUT_MS);
  return {
    id,
    owner,
    state: 'queued',
    progress: 0,
    model: r.model,
    upstream_model: firstRoute?.model ?? '',
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
    usage_status: 'reserved',
    // Should this request die before the upstream answers, the reconciler picks the task up then.
    submit_lease_until: now + lease,
    due_at: now + lease,
    expires_at: Math.floor(now / 1000) + config.TASK_RETENTION_DAYS * 86400,
  };
}

/** The job a route hands its upstream: the client's request with the route's own model id and size. */
function jobFor(task: TaskRecord, route: RouteConfig, callback: string, imageUrls: string[]): UpstreamJob {
  return {
    taskId: task.id,
    model: route.model,
    prompt: task.prompt,
    aspectRatio: task.aspect_ratio,
    duration: task.duration,
    imageUrls,
    characters: task.characters,
    callbackUrl: callback,
    size: route.sizes?.[task.aspect_ratio as keyof NonNullable<RouteConfig['sizes']>],
    resolution: route.resolution,
  };
}

/**
 * The task's routes, in order of preference: its model's, or (a model since dropped from the
 * catalog) where it was. A remix has one: the route that made its original, since no other
 * upstream has that video.
 */
function routesOf(task: TaskRecord, d: UpstreamNeeds): RouteConfig[] {
  const model = modelOf(d.config.catalog.models, task.model);
  const where = { upstream: task.upstream ?? d.config.catalog.upstreams[0]!.name, model: task.upstream_model };
  if (task.remixed_from !== undefined) return [model?.routes.find((r) => r.upstream === where.upstream && r.model === where.model) ?? where];
  return model ? model.routes : [where];
}

/** A remix's call: the upstream makes the new job from the original's (an adapter without remix refuses it for good). */
const remixOf =
  (sourceJob: string) =>
  (provider: UpstreamProvider, job: UpstreamJob): Promise<{ upstreamId: string }> =>
    provider.remix ? provider.remix(sourceJob, job) : Promise.reject(new UpstreamError('rejected', 'this model cannot remix videos'));

const registryOf = (d: UpstreamNeeds): UpstreamRegistry => d.upstreams;

/**
 * Hand a queued task to the first route that takes it (see `router.ts`), each upstream call
 * made under the task's submit claim (`TaskStore.claimSubmit`), so that of overlapping workers
 * (reconcile runs, a reconcile run and the client's own submit) exactly one calls an upstream;
 * undefined for the others. `heldLease`: the caller holds the claim already (it just created
 * the task with that `submit_lease_until`). Taken: `submitted`,
 * with the route, its upstream and its model id. Refused for good: `failed` with the
 * upstream's reason. Held after an ambiguous answer: stays `queued`, due when that upstream
 * is to be asked again. Every route down, slow or rate-limited: stays `queued`, due again
 * after a backoff (never sooner than an upstream's Retry-After). Every attempt is recorded.
 */
export async function submitUpstream(task: TaskRecord, d: UpstreamNeeds, options: { heldLease?: number } = {}): Promise<TaskRecord | undefined> {
  const attempts = task.submit_attempts + 1;
  const leaseMs = submitLeaseMs(d.config.UPSTREAM_TIMEOUT_MS);
  let held = options.heldLease;
  // A task just created is claimed already: its first route needs no second write.
  let fresh = held !== undefined;
  const claim = async () => {
    if (fresh) {
      fresh = false;
      return true;
    }
    const claimed = await d.store.claimSubmit(task.id, leaseMs, held);
    held = claimed?.submit_lease_until;
    return claimed !== undefined;
  };
  const routes = routesOf(task, d);
  // The index in the model's routes that the record keeps: a remix's one route is its original's.
  const modelRoute = (route: number) => (task.remixed_from === undefined ? route : task.route);
  const upstreams = registryOf(d);
  const callback = callbackUrl(d.config.PUBLIC_BASE_URL, await d.callbackSecret(), task.id);
  // An uploaded image's link is signed for this hand-off: one signed at the create may have expired by a resubmit.
  const imageUrls = task.input_image === undefined ? task.image_urls : [await d.inputs.link(task.input_image, d.store.now())];
  let result: RouteResult;
  try {
    result = await routeTask(task, routes, (route) => jobFor(task, route, callback, imageUrls), {
      upstreams,
      circuits: d.circuits,
      now: () => d.store.now(),
      claim,
      ambiguousWaitMs: d.config.AMBIGUOUS_WAIT_SECONDS * 1000,
      findJobAfterMs: d.config.FIND_JOB_AFTER_SECONDS * 1000,
      send: task.remix_source_job === undefined ? undefined : remixOf(task.remix_source_job),
    });
  } catch (error) {
    // The gateway's own trouble (the circuits' table): the task waits, as for a down upstream.
    result = { kind: 'deferred', reason: `routing failed: ${(error as Error).message}`, attempts: [] };
  }
  const now = d.store.now();
  switch (result.kind) {
    case 'submitted': {
      const { upstream, upstreamId, route, adopted } = result;
      const moved = await d.store.markSubmitted(task.id, upstreamId, nextCheck(task, now, d.config.SILENT_AFTER_SECONDS), {
        upstream,
        route: modelRoute(route),
        upstreamModel: routes[route]!.model,
        attempts: result.attempts,
      });
      logger.info(adopted ? 'task adopted by the upstream that holds its job' : 'task submitted', { taskId: task.id, upstream, route, upstreamId, attempts });
      if (moved) await startPolling(moved, await upstreams.get(upstream), d);
      return moved ?? (await d.store.get(task.id));
    }
    case 'rejected': {
      const { upstream, route, message } = result;
      logger.info('upstream refused task', { taskId: task.id, upstream, reason: message });
      const who = upstreamIdentity(d.config.catalog.upstreams, upstream, routes[route]!.model);
      const failed = await d.store.markRejected(task, clientMessage(message, who), {
        upstream,
        route: modelRoute(route),
        upstreamModel: routes[route]!.model,
        attempts: result.attempts,
      });
      await afterFinish(failed, d);
      return failed ?? (await d.store.get(task.id));
    }
    case 'held': {
      const { upstream, route, until, reason } = result;
      logger.warn('ambiguous upstream answer: the task waits for that upstream', { taskId: task.id, upstream, until, reason });
      // The upstream that may hold the job is the task's until it is found not to: its callback is read in its dialect.
      return d.store.deferSubmit(task.id, attempts, Math.min(until, task.deadline_at), reason, {
        upstream,
        route: modelRoute(route),
        upstreamModel: routes[route]!.model,
        attempts: result.attempts,
      });
    }
    case 'deferred': {
      const delay = backoffSeconds(attempts, { base: d.config.RESUBMIT_BASE_SECONDS, cap: 900, retryAfter: result.retryAfterSeconds });
      logger.warn('no route took the task, it stays queued', { taskId: task.id, attempts, retryInSeconds: delay, reason: result.reason });
      return d.store.deferSubmit(task.id, attempts, Math.min(now + delay * 1000, task.deadline_at), result.reason, { attempts: result.attempts });
    }
    case 'busy':
      return undefined;
  }
}
