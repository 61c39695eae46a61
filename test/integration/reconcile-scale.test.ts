import { describe, expect, it } from 'vitest';
import { measureReconcileScale, reconcileScaleReport } from '../../bench/reconcile-scale';

/**
 * The reconciler reads every due-index shard at once and works through what it finds with
 * one bounded pool: one run clears a backlog of due tasks spread over the shards, sending
 * each exactly one upstream job. (`npm run bench -- --scale` runs the same with 10,000.)
 */
describe('one reconcile run over a backlog spread across the due-index shards', () => {
  it('resubmits every due task once, leaving none queued', async () => {
    const result = await measureReconcileScale(400);
    console.info(reconcileScaleReport([result]));
    expect(result).toMatchObject({ tasks: 400, submitted: 400, upstreamJobs: 400, doubled: 0, leftQueued: 0 });
  }, 120_000);
});
