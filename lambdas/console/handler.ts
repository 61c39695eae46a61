import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { openApiAsset } from './assets';

/**
 * `GET /console[/{file}]`: the operator console's static files, built by esbuild next to
 * this bundle (the stack copies them there; `npm start` points CONSOLE_ASSETS_DIR at its
 * build). No API of its own: the page calls the gateway's API with the key the user gives.
 * `GET /openapi.json`: the API's OpenAPI document, built with them for the stage's catalog.
 */

const types: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Each file read with the first request for it, then kept: the Lambda loads nothing when it
 * starts (Node's file and path modules included), and a cold request reads the one file it asks for.
 */
const files = new Map<string, Promise<string>>();
async function readAsset(name: string): Promise<string> {
  const [{ readFile }, { dirname, join }, { fileURLToPath }] = await Promise.all([import('node:fs/promises'), import('node:path'), import('node:url')]);
  const dir = process.env.CONSOLE_ASSETS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), 'console');
  return readFile(join(dir, name), 'utf8');
}
function asset(name: string): Promise<string> {
  let file = files.get(name);
  if (file === undefined) {
    // A failed read is not kept: the next request tries again.
    file = readAsset(name).catch((error: unknown) => {
      files.delete(name);
      throw error;
    });
    files.set(name, file);
  }
  return file;
}

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
  if (event.routeKey === 'GET /openapi.json')
    return { statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' }, body: await asset(openApiAsset) };
  const name = event.pathParameters?.file ?? 'index.html';
  const type = Object.hasOwn(types, name) ? types[name] : undefined;
  if (type === undefined)
    return {
      statusCode: 404,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: 'not_found', message: `the console has no file ${name}`, type: 'invalid_request_error' } }),
    };
  return {
    statusCode: 200,
    headers: {
      'content-type': type,
      'content-security-policy': policy,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // The page is small and changes with each deploy: always revalidate.
      'cache-control': 'no-cache',
    },
    body: await asset(name),
  };
}
