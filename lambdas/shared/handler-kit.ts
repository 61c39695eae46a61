import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type * as z from 'zod/mini';
import { jsonErrors, type HttpEvent, type HttpResult } from './http';
import { logger } from './logger';

/** An HTTP Lambda: structured logs with the request context, and every error as the API's JSON error. */
export function httpHandler<D>(core: (event: HttpEvent, deps: D) => Promise<HttpResult>, deps: D) {
  return middy<HttpEvent, HttpResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(jsonErrors())
    .handler((event) => core(event, deps));
}

/**
 * An SQS Lambda: each message parsed with its contract and handled on its own; the ones
 * that throw are reported back to SQS for redelivery, the rest are done.
 */
export function queueHandler<S extends z.ZodMiniType, D>(schema: S, core: (job: z.infer<S>, deps: D) => Promise<void>, deps: D) {
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => {
      const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
      for (const record of event.Records) {
        let job: z.infer<S>;
        try {
          job = schema.parse(JSON.parse(record.body));
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
