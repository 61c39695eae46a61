import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { bodyTooLarge, errorResult } from '../lambdas/shared/http';
import { defaultRouteLambda, matchRoute, routeKey, type LambdaName } from '../lambdas/shared/routes';
import { drainableRequests } from './request-drain';

export type HttpLambda = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** API Gateway refuses bodies over 10 MB before any Lambda runs; so does this adapter, on routes without a limit of their own. */
const MAX_EVENT_BODY = 10 * 1024 * 1024;

/** A Lambda context good enough for the handlers and Powertools. */
export function lambdaContext(name: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `local-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:local-${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/local-${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The request's method, path and query, and the route that serves it. */
function requestTarget(req: IncomingMessage) {
  // Split by hand: `new URL` would read a path such as `//host/x` as another host.
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? '' : target.slice(queryAt + 1);
  const method = (req.method ?? 'GET').toUpperCase();
  return { method, path, rawQuery, match: matchRoute(method, path) };
}

/** Build the API Gateway (HTTP API, payload 2.0) event that the cloud would hand the Lambda. */
export function toEvent(req: IncomingMessage, body: Buffer): { lambda: LambdaName; event: APIGatewayProxyEventV2 } {
  const { method, path, rawQuery, match } = requestTarget(req);
  const key = match ? routeKey(match.route) : '$default';
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && name !== 'cookie') headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(rawQuery)) query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  const textual = /^(application\/([\w.+-]+\+)?json|text\/|application\/x-www-form-urlencoded)/i.test(headers['content-type'] ?? '');
  const now = new Date();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: key,
    rawPath: path,
    rawQueryString: rawQuery,
    cookies: req.headers.cookie?.split(/;\s*/),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: match && Object.keys(match.pathParameters).length ? match.pathParameters : undefined,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: key,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length ? (textual ? body.toString('utf8') : body.toString('base64')) : undefined,
    isBase64Encoded: body.length > 0 && !textual,
  };
  return { lambda: match?.route.lambda ?? defaultRouteLambda, event };
}

function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2) {
  const headers: Record<string, string | number | boolean | string[]> = { ...result.headers };
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body = result.body ? Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  res.writeHead(result.statusCode ?? 200, { ...headers, 'content-length': body.length });
  res.end(body);
}

/**
 * The body, or undefined when it is over `limit` bytes: the rest is read to its end and
 * dropped, so that the client, still sending, gets the answer rather than a reset connection.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) chunks = [];
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface HttpAdapter {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The local API Gateway: routes requests with the route table the stack uses, hands each
 * to its unchanged Lambda handler as an HTTP API event, and writes back its result.
 */
export async function startHttpAdapter(options: {
  /** The Lambdas that serve routes (the job Lambdas are fed by queues and the schedule). */
  lambdas: Partial<Record<LambdaName, HttpLambda>>;
  port?: number;
  host?: string;
  /** How long close() waits for requests being handled to be answered. */
  closeTimeoutMs?: number;
  log?: (msg: string, fields?: object) => void;
}): Promise<HttpAdapter> {
  const log = options.log ?? (() => undefined);
  const server: Server = createServer((req, res) => {
    const started = Date.now();
    const own = requestTarget(req).match?.route.maxBodyBytes;
    readBody(req, own ?? MAX_EVENT_BODY)
      .then(async (body) => {
        if (body === undefined) {
          // A route with a limit of its own answers its 413, the API's error, as its handler would.
          send(
            res,
            own !== undefined
              ? errorResult(bodyTooLarge(own))
              : { statusCode: 413, headers: { 'content-type': 'application/json' }, body: '{"message":"Request Entity Too Large"}' },
          );
          return;
        }
        const { lambda, event } = toEvent(req, body);
        const handler = options.lambdas[lambda];
        if (!handler) throw new Error(`no local handler for the ${lambda} Lambda`);
        const result = await handler(event, lambdaContext(lambda, 29_000));
        send(res, result);
        log('request', { method: event.requestContext.http.method, path: event.rawPath, status: result.statusCode, ms: Date.now() - started });
      })
      .catch((error: Error) => {
        // What API Gateway answers when the integration itself fails.
        log('lambda failed', { error: error.message });
        if (!res.headersSent) send(res, { statusCode: 500, headers: { 'content-type': 'application/json' }, body: '{"message":"Internal Server Error"}' });
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 5000;
  const requests = drainableRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    // Requests being handled are answered first: their handlers still write the task table
    // and the queues, which the local gateway stops after this.
    async close() {
      const unanswered = await requests.drain(options.closeTimeoutMs ?? 5_000);
      if (unanswered > 0) log('api closed with requests still being handled', { requests: unanswered });
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
