import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type * as z from 'zod/mini';
import { lambdaHandler } from './handler-kit';
import { logger } from './logger';

/**
 * An SQS Lambda: each message parsed with its contract and handled on its own; the ones
 * that throw are reported back to SQS for redelivery, the rest are done. `schema` gives the
 * contract (a `lazySchema`: built with the first message, not while the Lambda loads).
 */
export function queueHandler<S extends z.ZodMiniType, D>(schema: () => S, core: (job: z.infer<S>, deps: D) => Promise<void>, deps: D) {
  return lambdaHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      let job: z.infer<S>;
      try {
        job = schema().parse(JSON.parse(record.body));
      } catch (error) {
        // A message that can never be read is dropped, not retried forever.
        logger.error('unreadable queue message dropped', { messageId: record.messageId, error: error as Error });
        continue;
      }
      try {
        await core(job, deps);
      } catch (error) {
        logger.error('queue job failed, will be redelivered', { messageId: record.messageId, error: error as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  });
}

/** A Lambda run by the schedule: the event carries nothing the work needs. */
export function scheduledHandler<R>(work: () => Promise<R>) {
  return lambdaHandler(async (_event: unknown) => work());
}
