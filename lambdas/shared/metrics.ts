import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * The gateway's metrics: one name list shared by the code that emits them and the stack's
 * alarms and dashboard (lib/monitoring.ts), so the two cannot disagree. In AWS each data
 * point is an embedded-metric-format log line (Powertools Metrics); locally the same points
 * are also summed in memory, which `GET /admin/metrics` shows.
 */

export const METRICS_NAMESPACE = 'VideoTaskGateway';
export const METRICS_SERVICE = 'video-task-gateway';

export const metric = {
  tasksSubmitted: 'TasksSubmitted',
  tasksSucceeded: 'TasksSucceeded',
  tasksFailed: 'TasksFailed',
  /** Seconds from submit to the archived video, per model. */
  timeToVideo: 'TimeToVideo',
  upstreamSubmitLatency: 'UpstreamSubmitLatency',
  upstreamSubmits: 'UpstreamSubmits',
  upstreamErrors: 'UpstreamErrors',
  failovers: 'Failovers',
  circuitOpened: 'CircuitOpened',
  archiveBytes: 'ArchiveBytes',
  archiveThroughput: 'ArchiveThroughput',
  webhookDeliveries: 'WebhookDeliveries',
  reconciledTasks: 'ReconciledTasks',
  polls: 'Polls',
} as const;
export type MetricName = (typeof metric)[keyof typeof metric];

export const unit = MetricUnit;
type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** Dimension names in use; each data point is recorded alone and once per dimension it names. */
export type Dimensions = Partial<Record<'model' | 'code' | 'upstream' | 'kind' | 'outcome', string>>;

export interface LocalFigure {
  name: MetricName;
  unit: Unit;
  dimensions: Dimensions;
  count: number;
  sum: number;
  min: number;
  max: number;
}

const local = new Map<string, LocalFigure>();

/**
 * Powertools Metrics, flushed at the end of each invocation by its middy middleware
 * (`logMetrics`, handler-kit.ts). `record` publishes each point at once, so most flushes find
 * nothing stored: those publish nothing, without Powertools' "no application metrics" warning
 * on every invocation.
 */
class GatewayMetrics extends Metrics {
  override publishStoredMetrics(): this {
    return this.hasStoredMetrics() ? super.publishStoredMetrics() : this;
  }
}

let powertools: Metrics | undefined;

/** The process's one Metrics instance. */
export function metricsSink(): Metrics {
  powertools ??= new GatewayMetrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE });
  return powertools;
}

/**
 * Record one data point. Published at once as its own EMF record (dimension sets: the
 * service alone, and the service with each dimension given), so alarms can watch totals
 * and dashboards can split by model or upstream.
 */
export function record(name: MetricName, value: number, u: Unit = MetricUnit.Count, dimensions: Dimensions = {}): void {
  if (process.env.LOCAL_MODE === 'true' || process.env.LOCAL_MODE === '1') keepLocally(name, value, u, dimensions);
  if (process.env.POWERTOOLS_METRICS_DISABLED === 'true') return;
  // The total (service dimension only) and the splits are separate records: a record's
  // dimension sets all carry the dimensions it adds.
  metricsSink().singleMetric().addMetric(name, u, value);
  const given = Object.entries(dimensions).filter((e): e is [string, string] => Boolean(e[1]));
  if (given.length === 0) return;
  const split = metricsSink().singleMetric();
  for (const [k, v] of given) split.addDimensions({ [k]: v });
  split.addMetric(name, u, value);
}

function keepLocally(name: MetricName, value: number, u: Unit, dimensions: Dimensions) {
  for (const dims of [{}, ...Object.entries(dimensions).filter(([, v]) => v).map(([k, v]) => ({ [k]: v }))]) {
    const key = `${name}|${JSON.stringify(dims)}`;
    const figure = local.get(key) ?? { name, unit: u, dimensions: dims, count: 0, sum: 0, min: value, max: value };
    figure.count++;
    figure.sum += value;
    figure.min = Math.min(figure.min, value);
    figure.max = Math.max(figure.max, value);
    local.set(key, figure);
  }
}

/** What this process recorded (local mode): by name, each total before its splits. */
export function localFigures(): LocalFigure[] {
  const order = (f: LocalFigure) => `${f.name} ${Object.keys(f.dimensions).length} ${JSON.stringify(f.dimensions)}`;
  return [...local.values()].sort((a, b) => order(a).localeCompare(order(b)));
}
