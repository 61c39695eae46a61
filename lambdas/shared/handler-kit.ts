import middy, { type MiddlewareObj } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { errorResponse, type HttpEvent, type HttpResult } from './http';
import { logger } from './logger';
import { metricsSink } from './metrics';

/**
 * How long before Lambda would stop the function middy gives up on the work with a
 * `TimeoutError` (`timeoutEarlyInMillis`): an HTTP Lambda still answers its JSON 500 rather
 * than leaving API Gateway's bare 503, a job Lambda fails its batch for redelivery.
 */
export const TIMEOUT_EARLY_MS = 5;

/**
 * Every Lambda's middleware: the Lambda context on each log line of one invocation and the
 * invocation's keys cleared after it (also after an error), and the metrics flushed when it ends.
 */
export function lambdaHandler<E, R>(work: (event: E, context: Context) => Promise<R>) {
  return middy<E, R>({ timeoutEarlyInMillis: TIMEOUT_EARLY_MS })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metricsSink()))
    .handler(work);
}

export interface HttpHandlerOptions {
  /**
   * Requests whose 5xx answers, the early timeout's included, say `x-should-retry: false`:
   * creates that may have recorded a task before they failed, which a client library that
   * retries 5xx on its own (OpenAI's SDK) would otherwise send again as a second task.
   */
  noBlindRetry?: (event: HttpEvent) => boolean;
}

/**
 * Middy's error handler for the HTTP Lambdas: any error, middy's early `TimeoutError`
 * included, leaves as the API's JSON error body, never a stack trace.
 */
function jsonErrors(options: HttpHandlerOptions): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: async (request) => {
      const result = errorResponse(request.error, request.event);
      request.response =
        (result.statusCode ?? 500) < 500 || !options.noBlindRetry?.(request.event)
          ? result
          : { ...result, headers: { ...result.headers, 'x-should-retry': 'false' } };
    },
  };
}

/** An HTTP Lambda: structured logs with the request context, and every error as the API's JSON error. */
export function httpHandler<D>(core: (event: HttpEvent, deps: D) => Promise<HttpResult>, deps: D, options: HttpHandlerOptions = {}) {
  return lambdaHandler<HttpEvent, HttpResult>((event) => core(event, deps)).use(jsonErrors(options));
}
