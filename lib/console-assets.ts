import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import type { Catalog } from '../lambdas/shared/catalog';
import { openApiAsset } from '../lambdas/console/assets';
import { openApiDocument } from '../lambdas/shared/openapi';

/** The console's files: `console/` holds the page, its style and the TypeScript app. */
export const consoleFiles = ['index.html', 'app.css'] as const;

/**
 * Build the operator console into `outDir` with the project's esbuild: one minified ES
 * module for current browsers beside the page and its style, and the API's OpenAPI document
 * for the stage's catalog (`GET /openapi.json`: made here from the contracts, so that no
 * Lambda carries the JSON Schema generator). The stack copies the result next to the console
 * Lambda's bundle; `npm start` serves it from its data directory.
 */
export function buildConsole(projectRoot: string, outDir: string, models: Catalog['models']): void {
  mkdirSync(outDir, { recursive: true });
  buildSync({
    entryPoints: [join(projectRoot, 'console/app.ts')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    logLevel: 'error',
  });
  // Written anew rather than copied, so the files take the process's umask (the local data dir is private).
  for (const file of consoleFiles) writeFileSync(join(outDir, file), readFileSync(join(projectRoot, 'console', file)));
  writeFileSync(join(outDir, openApiAsset), JSON.stringify(openApiDocument(models)));
}
