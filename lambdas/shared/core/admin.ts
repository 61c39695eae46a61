import { keyId, type ApiKeyRecord } from '../api-keys';
import type { CircuitBreaker } from '../circuit-breaker';
import type { Config } from '../config';
import type { TaskRecord } from '../contracts/task';
import { ApiError, json, parseWith, type HttpEvent, type HttpResult } from '../http';
import { localFigures, METRICS_NAMESPACE } from '../metrics';
import { listQuerySchema, usageQuerySchema } from '../contracts/query';
import type { Needs } from './deps';
import { adminUsageReport } from './usage';
import { taskView } from './view';

export type AdminNeeds = Needs<'config' | 'store' | 'keys' | 'videos' | 'usage'> & { circuits: Pick<CircuitBreaker, 'state'> };

/** How many of the newest tasks the upstream error rate is read from. */
const RECENT_TASKS = 200;

/**
 * `/admin/…`: what an operator's key sees. Every task of every key with its route attempts
 * and upstream names, and each upstream's health. Any other key gets the same 404 as a
 * path that does not exist.
 */
export async function adminQuery(event: HttpEvent, d: AdminNeeds): Promise<HttpResult> {
  await d.keys.authenticateAdmin(event);
  switch (event.routeKey) {
    case 'GET /admin/tasks': {
      const { limit, after } = parseWith(listQuerySchema(), event.queryStringParameters ?? {});
      const { tasks, hasMore } = await allTasks(d, limit, after);
      const data = await Promise.all(tasks.map((t) => adminTaskView(t, d)));
      return json(200, { object: 'list', data, has_more: hasMore, next_cursor: hasMore ? (tasks.at(-1)?.id ?? null) : null });
    }
    case 'GET /admin/tasks/{id}': {
      const task = await d.store.get(event.pathParameters?.id ?? '');
      if (!task) throw ApiError.notFound();
      return json(200, await adminTaskView(task, d));
    }
    case 'GET /admin/usage': {
      const q = parseWith(usageQuerySchema(), event.queryStringParameters ?? {});
      return json(200, await adminUsageReport(await d.keys.list(), q, { usage: d.usage, defaultLimits: d.config.DEFAULT_LIMITS, now: () => d.store.now() }));
    }
    case 'GET /admin/upstreams':
      return json(200, { object: 'list', data: await upstreamHealth(d) });
    case 'GET /admin/metrics':
      if (!d.config.LOCAL_MODE)
        throw new ApiError(404, 'not_found', `in AWS the metrics are in CloudWatch, namespace ${METRICS_NAMESPACE}, and on the stack's dashboard`);
      return json(200, { object: 'list', namespace: METRICS_NAMESPACE, data: localFigures() });
    default:
      throw new ApiError(404, 'not_found', `no route for ${event.requestContext?.http?.method ?? ''} ${event.rawPath ?? ''}`.trim());
  }
}

/** The names of the upstreams this gateway is configured with. */
export const upstreamNames = (c: Config): string[] => c.catalog.upstreams.map((u) => u.name);

/** A task as its client sees it, plus whose it is and how it was routed. */
async function adminTaskView(task: TaskRecord, d: AdminNeeds) {
  return {
    ...(await taskView(task, d.videos)),
    key_id: keyId(task.owner),
    upstream: task.upstream ?? d.config.UPSTREAM_PROVIDER,
    upstream_model: task.upstream_model,
    upstream_id: task.upstream_id ?? null,
    route: task.route ?? 0,
    attempts: task.attempts ?? [],
    upstream_message: task.upstream_message ?? null,
  };
}

/**
 * Every key's tasks, newest first: each key's own index read from `after` on, merged. One
 * query per key per page; the key list itself is the admin command's scan.
 */
async function allTasks(d: AdminNeeds, limit: number, after?: string): Promise<{ tasks: TaskRecord[]; hasMore: boolean }> {
  const owners: ApiKeyRecord[] = await d.keys.list();
  const pages = await Promise.all(owners.map((k) => d.store.listByOwner(k.key_hash, limit, after)));
  const merged = pages.flatMap((p) => p.tasks).sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return { tasks: merged.slice(0, limit), hasMore: merged.length > limit || pages.some((p) => p.hasMore) };
}

/** Each upstream's circuit, and its error rate over the route attempts of the newest tasks. */
async function upstreamHealth(d: AdminNeeds) {
  const { tasks } = await allTasks(d, RECENT_TASKS);
  const attempts = tasks.flatMap((t) => t.attempts ?? []);
  return Promise.all(
    upstreamNames(d.config).map(async (name) => {
      const circuit = await d.circuits.state(name);
      const mine = attempts.filter((a) => a.upstream === name);
      const errors = mine.filter((a) => a.outcome !== 'submitted' && a.outcome !== 'adopted' && a.outcome !== 'rejected').length;
      return {
        name,
        circuit: circuit.phase,
        consecutive_failures: circuit.failures,
        open_until: circuit.openUntil ?? null,
        last_error: circuit.lastError ?? null,
        last_failure_at: circuit.lastFailureAt ?? null,
        recent_attempts: mine.length,
        recent_error_rate: mine.length ? errors / mine.length : 0,
      };
    }),
  );
}
