import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The context of the repository's `cdk.json` (the recommended feature flags, and whatever
 * stage settings the operator keeps there): what `cdk synth` and `cdk deploy` give the app,
 * so in-process syntheses (tests, `npm start`'s table and bucket) build the same template.
 */
export function cdkJsonContext(file = fileURLToPath(new URL('../cdk.json', import.meta.url))): Record<string, unknown> {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { context?: Record<string, unknown> };
  return json.context ?? {};
}
