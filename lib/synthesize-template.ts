import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { cdkJsonContext } from './cdk-context';
import { GatewayStack } from './gateway-stack';
import { parseStageConfig, stackName, type StageConfigInput } from './stage-config';

/** App context that makes every NodejsFunction skip esbuild: templates only, no bundles. */
export const skipBundlingContext = { 'aws:cdk:bundling-stacks': [] as string[] };

/**
 * The gateway's CloudFormation template, synthesized in-process without bundling, offline
 * and in a second or two. The local runtime builds its table and bucket from this, so the
 * local and the cloud definitions cannot drift apart.
 *
 * The stage configuration defaults apply unless `config` says otherwise; the environment
 * is not read, so the result is the same on every machine.
 */
export function synthesizeTemplate(config: StageConfigInput = {}): Record<string, any> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-synth-'));
  try {
    const app = new App({
      outdir,
      context: { ...cdkJsonContext(), ...skipBundlingContext },
      // The template is only read here; CloudFormation schema validation would cost seconds.
      builtinCloudFormationValidation: false,
    });
    const stageConfig = parseStageConfig(config);
    const stack = new GatewayStack(app, stackName(stageConfig), { config: stageConfig });
    const assembly = app.synth();
        return assembly.getStackArtifact(stack.artifactId).template as Record<string, any>;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
