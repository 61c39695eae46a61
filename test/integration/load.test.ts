import { describe, expect, it } from 'vitest';
import { formatLoadReport, runLoad } from '../../bench/load-run';

/**
 * Under load, nothing is lost (issue 3, point 8): the short, bounded version of
 * `npm run load`. Ten connections submit for five seconds while the simulated upstream
 * refuses a fifth of the submits, drops the callbacks of a fifth of the tasks and fails a
 * few renders; afterwards every answered id is in the table, every task is terminal, every
 * success has exactly one matching video and S3 event, and every callback_url got exactly
 * one verified webhook.
 */
describe('under load, nothing is lost and nothing doubled', () => {
  it('every answered task settles with one video, one S3 event and one verified webhook', async () => {
    const report = await runLoad({
      connections: 10,
      durationSeconds: 5,
      failSubmitRate: 0.2,
      dropCallbackRate: 0.2,
      failRenderRate: 0.05,
      drainTimeoutMs: 35_000,
    });
    console.info(formatLoadReport(report));

    expect(report.violations).toEqual([]);
    expect(report.settled).toBe(true);
    // The run did what it is meant to: real load, and each fault actually happened.
    expect(report.tasks.answered).toBeGreaterThan(20);
    expect(report.upstream.submitsRefused).toBeGreaterThan(0);
    expect(report.tasks.resubmitted).toBeGreaterThan(0);
    expect(report.upstream.callbacksDropped).toBeGreaterThan(0);
    expect(report.upstream.statusPolls).toBeGreaterThan(0);
    expect(report.tasks.succeeded).toBeGreaterThan(0);
    expect(report.tasks.succeeded + report.tasks.failed).toBe(report.tasks.inTable);
    expect(report.videos.verified).toBe(report.tasks.succeeded);
    expect(report.webhooks.tasksNotified).toBe(report.tasks.inTable);
  }, 60_000);
});
