import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { config } from '../shared/config';
import { reconcile } from '../shared/core/reconcile';
import { logger } from '../shared/logger';
import { callbackSecret, queues, taskStore } from '../shared/parts';
import { providerFor } from '../shared/providers';

const c = config();
const deps = { config: c, store: taskStore(c), provider: providerFor(c), queues: queues(c), callbackSecret: callbackSecret(c) };

/** Invoked every minute by the schedule. */
export const handler = middy()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(() => reconcile(deps));
