import { getText, operatorPolicy, sendJson, type TextResult } from '../outbound';
import { classifyTransport } from './common';

/** The exchange of the JSON-over-HTTP dialects that call back (fal, Replicate, OpenRouter). */

export interface HttpUpstreamOptions {
  /** The operator's name for this upstream. */
  name?: string;
  /** The dialect's API root, without a trailing slash. */
  baseUrl: string;
  /** Resolved lazily: in AWS it is read from Secrets Manager. */
  apiKey: () => Promise<string>;
  timeoutMs: number;
}

export interface UpstreamCall {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
  /** True for the request that makes a paid job: a failure after sending it is ambiguous. */
  createsJob?: boolean;
}

/** Over pooled keep-alive connections; `timeoutMs` bounds the whole exchange. Any status is returned. */
export async function callUpstream(call: UpstreamCall): Promise<TextResult> {
  const options = { policy: operatorPolicy, timeoutMs: call.timeoutMs, signal: AbortSignal.timeout(call.timeoutMs) };
  try {
    return call.method === 'GET'
      ? await getText(call.url, { ...options, headers: call.headers })
      : await sendJson(call.method, call.url, call.body === undefined ? '' : JSON.stringify(call.body), call.headers, options);
  } catch (error) {
    throw classifyTransport(error, call.createsJob ? 'submit' : 'poll', call.timeoutMs);
  }
}
