import type { SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { queueHandler, scheduledHandler } from '../../lambdas/shared/job-handlers';
import { logger } from '../../lambdas/shared/logger';
import { lambdaContext } from '../../local/http-adapter';

const jobSchema = z.object({ taskId: z.string() });
const sqsEvent = (...bodies: string[]): SQSEvent =>
  ({ Records: bodies.map((body, i) => ({ messageId: `m${i}`, body })) }) as unknown as SQSEvent;

/** What the logger was asked to do, in order. */
function watchLogger() {
  const calls: string[] = [];
  const errors: { message: string; messageId: unknown }[] = [];
  vi.spyOn(logger, 'addContext').mockImplementation((c) => void calls.push(`context ${(c as { awsRequestId: string }).awsRequestId}`));
  vi.spyOn(logger, 'resetKeys').mockImplementation(() => void calls.push('reset'));
  vi.spyOn(logger, 'error').mockImplementation((...args: unknown[]) => {
    errors.push({ message: String(args[0]), messageId: (args[1] as { messageId?: unknown } | undefined)?.messageId });
  });
  return { calls, errors };
}

afterEach(() => vi.restoreAllMocks());

describe('queueHandler', () => {
  it('hands each readable message to the job and reports only the failed ones for redelivery', async () => {
    const log = watchLogger();
    const seen: string[] = [];
    const handler = queueHandler(() => jobSchema, async (job: { taskId: string }) => {
      seen.push(job.taskId);
      if (job.taskId === 'task_b') throw new Error('upstream down');
    }, {});
    const event = sqsEvent('{"taskId":"task_a"}', '{"taskId":"task_b"}', 'not json', '{"nope":1}', '{"taskId":"task_c"}');
    expect(await handler(event, lambdaContext('archive', 900_000))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
    expect(seen).toEqual(['task_a', 'task_b', 'task_c']);
    // Unreadable messages are dropped (and logged), never retried.
    expect(log.errors).toEqual([
      { message: 'queue job failed, will be redelivered', messageId: 'm1' },
      { message: 'unreadable queue message dropped', messageId: 'm2' },
      { message: 'unreadable queue message dropped', messageId: 'm3' },
    ]);
  });

  it('logs under the invocation’s context, and clears its keys once the batch is done', async () => {
    const log = watchLogger();
    const handler = queueHandler(() => jobSchema, async () => void log.calls.push('job'), {});
    const context = lambdaContext('notify', 900_000);
    await handler(sqsEvent('{"taskId":"task_a"}', '{"taskId":"task_b"}'), context);
    expect(log.calls).toEqual([`context ${context.awsRequestId}`, 'job', 'job', 'reset']);
  });
});

describe('scheduledHandler', () => {
  it('runs the work under the invocation’s context and returns its result', async () => {
    const log = watchLogger();
    const handler = scheduledHandler(async () => {
      log.calls.push('work');
      return { resubmitted: 2 };
    });
    const context = lambdaContext('reconcile', 300_000);
    expect(await handler({}, context)).toEqual({ resubmitted: 2 });
    expect(log.calls).toEqual([`context ${context.awsRequestId}`, 'work', 'reset']);
  });

  it('clears the invocation’s keys when the work throws, and lets the error through', async () => {
    const log = watchLogger();
    const handler = scheduledHandler(async () => {
      throw new Error('table unreachable');
    });
    await expect(handler({}, lambdaContext('reconcile', 300_000))).rejects.toThrow('table unreachable');
    expect(log.calls.at(-1)).toBe('reset');
  });
});
