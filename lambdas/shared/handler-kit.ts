import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { jsonErrors, type HttpEvent, type HttpResult } from './http';
import { logger } from './logger';

/** An HTTP Lambda: structured logs with the request context, and every error as the API's JSON error. */
export function httpHandler<D>(core: (event: HttpEvent, deps: D) => Promise<HttpResult>, deps: D) {
  return middy<HttpEvent, HttpResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(jsonErrors())
    .handler((event) => core(event, deps));
}
