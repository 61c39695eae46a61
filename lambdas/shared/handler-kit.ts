import type { Context } from 'aws-lambda';
import { errorResponse, type HttpEvent, type HttpResult } from './http';
import { logger } from './logger';

/**
 * The Lambda context on every log line of one invocation, then the invocation's keys
 * cleared: what Powertools' middy middleware (`injectLambdaContext` with `resetKeys`) does.
 * The handlers do without middy: its core loads Node's web streams for response streaming,
 * which no handler here uses, and that alone costs a Lambda about 5 ms of cold start.
 */
export function withLogContext<E, R>(work: (event: E, context: Context) => Promise<R>) {
  return async (event: E, context: Context): Promise<R> => {
    logger.refreshSampleRateCalculation();
    logger.addContext(context);
    logger.logEventIfEnabled(event);
    try {
      return await work(event, context);
    } finally {
      logger.resetKeys();
    }
  };
}

/** How long before Lambda would stop the function a request gives up (middy's `timeoutEarlyInMillis`). */
export const TIMEOUT_EARLY_MS = 5;

/**
 * The work, or a `TimeoutError` just before the invocation runs out of time, so that the
 * client gets the API's JSON 500 rather than API Gateway's bare 503 (as middy's timeoutEarly).
 */
async function beforeTimeout<R>(work: Promise<R>, context: Context | undefined): Promise<R> {
  if (typeof context?.getRemainingTimeInMillis !== 'function') return work;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error('[AbortError]: The operation was aborted.');
      error.name = 'TimeoutError';
      reject(error);
    }, context.getRemainingTimeInMillis() - TIMEOUT_EARLY_MS);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export interface HttpHandlerOptions {
  /**
   * Requests whose 5xx answers, the early timeout's included, say `x-should-retry: false`:
   * creates that may have recorded a task before they failed, which a client library that
   * retries 5xx on its own (OpenAI's SDK) would otherwise send again as a second task.
   */
  noBlindRetry?: (event: HttpEvent) => boolean;
}

/** An HTTP Lambda: structured logs with the request context, and every error as the API's JSON error. */
export function httpHandler<D>(core: (event: HttpEvent, deps: D) => Promise<HttpResult>, deps: D, options: HttpHandlerOptions = {}) {
  return withLogContext(async (event: HttpEvent, context: Context): Promise<HttpResult> => {
    try {
      return await beforeTimeout(core(event, deps), context);
    } catch (error) {
      const result = errorResponse(error, event);
      if ((result.statusCode ?? 500) < 500 || !options.noBlindRetry?.(event)) return result;
      return { ...result, headers: { ...result.headers, 'x-should-retry': 'false' } };
    }
  });
}
