import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { lambdaNames, type LambdaName } from '../../lambdas/shared/routes';
import { GatewayStack, projectRoot } from '../../lib/gateway-stack';
import { parseStageConfig, type StageConfigInput } from '../../lib/stage-config';
import { cdkJsonContext } from '../../lib/cdk-context';
import { skipBundlingContext } from '../../lib/synthesize-template';

export interface Synthesized {
  app: App;
  stack: GatewayStack;
  template: Template;
  /** The template's JSON, for walking it by hand. */
  json: { Resources: Record<string, Resource>; Outputs: Record<string, { Value: unknown }> };
  /** Logical id of a construct's CloudFormation resource (L2 or L1). */
  id(construct: IConstruct): string;
  /** Logical id of each Lambda function, by name. */
  functionIds: Record<LambdaName, string>;
}

export interface Resource {
  Type: string;
  Properties?: Record<string, any>;
  DependsOn?: string[];
}

/** The gateway stack, synthesized without bundling (fast, offline) and without CloudFormation schema checks. */
export function synthesizeGateway(config: StageConfigInput = {}): Synthesized {
  const app = new App({ context: { ...cdkJsonContext(), ...skipBundlingContext }, builtinCloudFormationValidation: false });
  const stack = new GatewayStack(app, 'VideoTaskGateway', { config: parseStageConfig(config) });
  const template = Template.fromStack(stack);
  const id = (construct: IConstruct) =>
    stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  const functionIds = Object.fromEntries(lambdaNames.map((n) => [n, id(stack.functions[n].function)])) as Record<
    LambdaName,
    string
  >;
  return { app, stack, template, json: template.toJSON() as Synthesized['json'], id, functionIds };
}

/** The README's worked example (its Configuration section): the context `cdk synth` gets. */
export function readmeWorkedExample(): { section: string; context: { upstreams: unknown[]; models: Record<string, unknown> } } {
  const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('#### Worked example'));
  return { section, context: JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as never };
}

/** Resources of one type, by logical id. */
export function resourcesOfType(json: Synthesized['json'], type: string): [string, Resource][] {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

/**
 * A CloudFormation value as a readable string: `{Ref: X}` is `<X>`, `{Fn::GetAtt: [X, Arn]}`
 * is `<X.Arn>`, joins are joined (the notation cdk-nag uses in its finding ids).
 */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if ('Ref' in v) return `<${v.Ref}>`;
    if ('Fn::GetAtt' in v) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in v) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(sep);
    }
  }
  return JSON.stringify(value);
}

/**
 * A function's environment as the Lambda will see it: deploy-time values (Refs, joins)
 * stand in as plausible strings, URLs for `*_URL`, `resolved-<LogicalId>` for the rest.
 */
export function deployTimeEnvironment(variables: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(variables).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : k.endsWith('_URL') ? 'https://deploy-time.example' : render(v).replace(/<([\w.]+)>/g, 'resolved-$1'),
    ]),
  );
}

/** The one resource of a type; fails when there are none or several. */
export function onlyResourceOfType(json: Synthesized['json'], type: string): Resource & { Properties: Record<string, any> } {
  const found = resourcesOfType(json, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0]![1] as Resource & { Properties: Record<string, any> };
}

export const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
