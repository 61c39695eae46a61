import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** What CloudWatch reads: one EMF record per data point, with the service and each dimension as its own set. */
describe('metrics', () => {
  let lines: string[];
  beforeEach(() => {
    vi.resetModules();
    lines = [];
    for (const stream of [process.stdout, process.stderr])
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('publishes each point as EMF in the VideoTaskGateway namespace, split by each dimension given', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('LOCAL_MODE', 'false');
    const { record, metric, unit } = await import('../../lambdas/shared/metrics');
    record(metric.tasksFailed, 1, unit.Count, { model: 'sora-2', code: 'timeout' });
    const records = lines.map((l) => JSON.parse(l)).filter((o) => o._aws);
    expect(records).toHaveLength(2);
    for (const r of records) {
      const [directive] = r._aws.CloudWatchMetrics;
      expect(directive.Namespace).toBe('VideoTaskGateway');
      expect(directive.Metrics).toEqual([{ Name: 'TasksFailed', Unit: 'Count' }]);
      expect(r).toMatchObject({ service: 'video-task-gateway', TasksFailed: 1 });
    }
    // The total once, and once split by each dimension: alarms read the first, dashboards the second.
    expect(records.flatMap((r) => r._aws.CloudWatchMetrics[0].Dimensions)).toEqual([['service'], ['service', 'model'], ['service', 'code']]);
    expect(records[1]).toMatchObject({ model: 'sora-2', code: 'timeout' });
  });

  it('locally sums the same points, in total and per dimension, for GET /admin/metrics', async () => {
    vi.stubEnv('LOCAL_MODE', 'true');
    const { record, metric, unit, localFigures } = await import('../../lambdas/shared/metrics');
    record(metric.timeToVideo, 4, unit.Seconds, { model: 'a' });
    record(metric.timeToVideo, 10, unit.Seconds, { model: 'b' });
    record(metric.timeToVideo, 6, unit.Seconds, { model: 'a' });
    const figures = localFigures().filter((f) => f.name === 'TimeToVideo');
    expect(figures).toEqual([
      { name: 'TimeToVideo', unit: 'Seconds', dimensions: {}, count: 3, sum: 20, min: 4, max: 10 },
      { name: 'TimeToVideo', unit: 'Seconds', dimensions: { model: 'a' }, count: 2, sum: 10, min: 4, max: 6 },
      { name: 'TimeToVideo', unit: 'Seconds', dimensions: { model: 'b' }, count: 1, sum: 10, min: 10, max: 10 },
    ]);
    expect(lines.filter((l) => l.includes('_aws'))).toEqual([]);
  });

  it('flushes what an invocation stored when it ends, and writes nothing for one that stored nothing', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
    const { metricsSink } = await import('../../lambdas/shared/metrics');
    const { lambdaHandler } = await import('../../lambdas/shared/handler-kit');
    const { lambdaContext } = await import('../../local/http-adapter');
    await lambdaHandler(async () => 'nothing recorded')({}, lambdaContext('query', 30_000));
    expect(lines).toEqual([]);
    await lambdaHandler(async () => void metricsSink().addMetric('Polls', 'Count', 2))({}, lambdaContext('poll', 30_000));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'video-task-gateway', Polls: 2, _aws: { CloudWatchMetrics: [{ Namespace: 'VideoTaskGateway' }] } });
  });
});
