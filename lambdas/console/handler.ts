import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * `GET /console[/{file}]`: the operator console's static files, built by esbuild next to
 * this bundle (the stack copies them there; `npm start` points CONSOLE_ASSETS_DIR at its
 * build). No API of its own: the page calls the gateway's API with the key the user gives.
 */

const types: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

const dir = process.env.CONSOLE_ASSETS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), 'console');
const files = new Map(Object.keys(types).map((name) => [name, readFileSync(join(dir, name), 'utf8')]));

/**
 * Scripts and styles only from the console itself (no inline script), API calls only to
 * this origin, videos only from the bucket's presigned URLs.
 */
const policy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  `media-src ${process.env.VIDEO_ORIGIN ?? "'none'"}`,
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export async function handler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const name = event.pathParameters?.file ?? 'index.html';
  const body = files.get(name);
  if (body === undefined)
    return {
      statusCode: 404,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: 'not_found', message: `the console has no file ${name}`, type: 'invalid_request_error' } }),
    };
  return {
    statusCode: 200,
    headers: {
      'content-type': types[name]!,
      'content-security-policy': policy,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // The page is small and changes with each deploy: always revalidate.
      'cache-control': 'no-cache',
    },
    body,
  };
}
