import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { reconcile } from '../shared/core/reconcile';
import { gateway } from '../shared/handler-kit';
import { logger } from '../shared/logger';

/** Invoked every minute by the schedule. */
export const handler = middy()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(() => reconcile(gateway));
