import { MAX_VIDEOS_BODY_BYTES } from './contracts/api';

/**
 * The HTTP routes and the Lambda that serves each. The CDK stack builds the HTTP API from
 * this table and the local runtime dispatches with it, so the two cannot disagree.
 */
export const lambdaNames = ['submit', 'query', 'callback', 'archive', 'notify', 'reconcile', 'poll', 'console'] as const;
export type LambdaName = (typeof lambdaNames)[number];
/** The Lambdas that run the gateway's own code on its configuration; the console only serves files. */
export const configuredLambdaNames = lambdaNames.filter((n): n is Exclude<LambdaName, 'console'> => n !== 'console');

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** API Gateway path template: `{name}` matches one path segment. */
  path: string;
  lambda: LambdaName;
  /**
   * The route's own body limit, for a route that takes large bodies: its handler answers a
   * larger body with the API's 413, and so does the local adapter, which reads no more. (In
   * AWS a Lambda's event is at most 6 MB, which binds first; see the README.)
   */
  maxBodyBytes?: number;
}

export const routes: readonly Route[] = [
  { method: 'POST', path: '/v1/videos/generations', lambda: 'submit' },
  { method: 'GET', path: '/v1/videos/generations', lambda: 'query' },
  { method: 'GET', path: '/v1/videos/generations/{id}', lambda: 'query' },
  { method: 'GET', path: '/v1/videos/generations/{id}/content', lambda: 'query' },
  { method: 'POST', path: '/v1/videos/generations/{id}/cancel', lambda: 'submit' },
  { method: 'POST', path: '/v1/videos/generations/{id}/remix', lambda: 'submit' },
  { method: 'DELETE', path: '/v1/videos/generations/{id}', lambda: 'submit' },
  { method: 'GET', path: '/v1/videos/tasks/{id}', lambda: 'query' },
  { method: 'POST', path: '/v1/videos', lambda: 'submit', maxBodyBytes: MAX_VIDEOS_BODY_BYTES },
  { method: 'GET', path: '/v1/videos', lambda: 'query' },
  { method: 'GET', path: '/v1/videos/{id}', lambda: 'query' },
  { method: 'GET', path: '/v1/videos/{id}/content', lambda: 'query' },
  { method: 'DELETE', path: '/v1/videos/{id}', lambda: 'submit' },
  { method: 'POST', path: '/v1/videos/{id}/remix', lambda: 'submit' },
  { method: 'GET', path: '/v1/models', lambda: 'query' },
  { method: 'GET', path: '/v1/usage', lambda: 'query' },
  { method: 'GET', path: '/openapi.json', lambda: 'console' },
  { method: 'POST', path: '/callbacks/upstream/{id}', lambda: 'callback' },
  { method: 'GET', path: '/admin/tasks', lambda: 'query' },
  { method: 'GET', path: '/admin/tasks/{id}', lambda: 'query' },
  { method: 'GET', path: '/admin/upstreams', lambda: 'query' },
  { method: 'GET', path: '/admin/metrics', lambda: 'query' },
  { method: 'GET', path: '/admin/usage', lambda: 'query' },
  { method: 'GET', path: '/console', lambda: 'console' },
  { method: 'GET', path: '/console/{file}', lambda: 'console' },
];

/** Requests that match no route go here, so even a 404 is the gateway's JSON error. */
export const defaultRouteLambda: LambdaName = 'query';

export const routeKey = (r: Pick<Route, 'method' | 'path'>) => `${r.method} ${r.path}`;

/** Match a concrete path against the table; returns the route and its path parameters. */
export function matchRoute(
  method: string,
  path: string,
): { route: Route; pathParameters: Record<string, string> } | undefined {
  const segments = path.split('/');
  for (const route of routes) {
    if (route.method !== method) continue;
    const template = route.path.split('/');
    if (template.length !== segments.length) continue;
    const pathParameters: Record<string, string> = {};
    const matches = template.every((part, i) => {
      const segment = segments[i]!;
      const param = /^\{(\w+)\}$/.exec(part);
      if (!param) return part === segment;
      if (segment === '') return false;
      try {
        pathParameters[param[1]!] = decodeURIComponent(segment);
        return true;
      } catch {
        return false; // malformed %-escape: not a path this route serves
      }
    });
    if (matches) return { route, pathParameters };
  }
  return undefined;
}

/** Entry file of each Lambda, relative to the project root. */
export const lambdaEntry = (name: LambdaName) => `lambdas/${name}/handler.ts`;
