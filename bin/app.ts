import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { GatewayStack } from '../lib/gateway-stack';
import { readStageConfig, stackName } from '../lib/stage-config';

// `cdk synth` / `cdk deploy`: the stage comes from context (`-c key=value`, cdk.json) and
// the environment (see lib/stage-config.ts for the names).
const app = new App();
const config = readStageConfig((key) => app.node.tryGetContext(key));

// Environment-agnostic (no account/region): the stack uses no lookups and deploys anywhere.
new GatewayStack(app, stackName(config), { config });

// cdk-nag: synthesis fails on any AwsSolutions finding that the stack has not acknowledged.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
