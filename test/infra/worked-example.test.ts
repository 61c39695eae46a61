import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerKinds, publicModel } from '../../lambdas/shared/catalog';
import { parseConfig } from '../../lambdas/shared/config';
import { configuredLambdaNames, lambdaNames, type LambdaName } from '../../lambdas/shared/routes';
import { cdkJsonContext } from '../../lib/cdk-context';
import { projectRoot } from '../../lib/gateway-stack';
import { asArray, deployTimeEnvironment, readmeWorkedExample, render, synthesizeGateway, type Synthesized } from './support';

/**
 * The README's worked example (two OpenAI-compatible resellers, duomi and Bedrock), read
 * from the README itself: `cdk synth` with exactly that context, offline, bundles and
 * cdk-nag included, and what the stack makes of it.
 */
const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
const { section, context: example } = readmeWorkedExample();

let s: Synthesized;
let outdir: string;
let synth: ReturnType<typeof spawnSync>;
beforeAll(() => {
  s = synthesizeGateway(example);
  // What `npx cdk synth` does with cdk.json plus this context: runs bin/app.ts with CDK_CONTEXT_JSON.
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-example-'));
  synth = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext(), upstreams: JSON.stringify(example.upstreams), models: JSON.stringify(example.models) }),
    },
    encoding: 'utf8',
    timeout: 300_000,
  });
}, 300_000);
afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

const variables = (name: LambdaName) => s.json.Resources[s.functionIds[name]]!.Properties!.Environment.Variables as Record<string, unknown>;

/** Every statement of the policies attached to a function's role, as `action resource` lines. */
function grantsOf(name: LambdaName, filter: RegExp): string[] {
  const roleId = s.id(s.stack.functions[name].role);
  const bucket = `<${s.id(s.stack.storage.bucket)}.Arn>`;
  return Object.values(s.json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && asArray(r.Properties!.Roles).some((x: any) => x.Ref === roleId))
    .flatMap((r) => r.Properties!.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[])
    .flatMap((st) => asArray(st.Action).flatMap((a) => asArray(st.Resource).map((res) => `${a} ${render(res).replace(bucket, 'bucket')}`)))
    .filter((g) => filter.test(g))
    .sort();
}

describe('the README’s worked example', { timeout: 60_000 }, () => {
  it('`cdk synth` with exactly that context succeeds offline, cdk-nag included', () => {
    expect(synth.error).toBeUndefined();
    expect(synth.stderr).not.toMatch(/AwsSolutions-|invalid stage configuration/);
    expect(synth.status).toBe(0);
    expect(fs.existsSync(path.join(outdir, 'VideoTaskGateway.template.json'))).toBe(true);
  });

  it('bundles in each Lambda the adapters its work may load, of duomi, openai and bedrock, and no other kind', () => {
    const template = JSON.parse(fs.readFileSync(path.join(outdir, 'VideoTaskGateway.template.json'), 'utf8')) as { Resources: Record<string, any> };
    const kindsIn = (description: string) => {
      const fn = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description === description)!;
      const dir = path.join(outdir, `asset.${String(fn.Properties.Code.S3Key).replace(/\.zip$/, '')}`);
      const sources = (JSON.parse(fs.readFileSync(path.join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] }).sources;
      const kinds = providerKinds.filter((k) => sources.some((src) => src.endsWith(`lambdas/shared/providers/${k}.ts`)));
      return { kinds, bedrockSdk: sources.some((src) => src.includes('node_modules/@aws-sdk/client-bedrock-runtime/')) };
    };
    for (const name of ['submit', 'reconcile', 'poll'] as const)
      expect(kindsIn(descriptionOf(name)), name).toEqual({ kinds: ['duomi', 'openai', 'bedrock'], bedrockSdk: true });
    // Callbacks come only from kinds given our callback URL; the archive needs no adapter (it
    // copies Bedrock's output without its client and takes a content endpoint's headers from a table).
    expect(kindsIn(descriptionOf('callback'))).toEqual({ kinds: ['duomi'], bedrockSdk: false });
    for (const name of ['archive', 'query', 'notify', 'console'] as const) expect(kindsIn(descriptionOf(name)), name).toEqual({ kinds: [], bedrockSdk: false });
  });

  it('the Lambdas get the catalog as the runtime parses it, with the keys’ ARNs and never a key', () => {
    const env = variables('submit');
    for (const name of configuredLambdaNames) expect(variables(name)).toEqual(env);
    const config = parseConfig(deployTimeEnvironment(env));
    expect(config.catalog.upstreams.map((u) => `${u.name} ${u.kind}`)).toEqual(['reseller-a openai', 'reseller-b openai', 'duomi duomi', 'aws bedrock']);
    expect(Object.keys(config.catalog.models)).toEqual(['seedance-2.0', 'ray-2', 'sora-2']);
    expect(config.catalog.models['ray-2']!.routes.map((r) => r.upstream)).toEqual(['aws', 'reseller-b']);
    expect(Object.keys(config.UPSTREAM_SECRET_ARNS).sort()).toEqual(['duomi', 'reseller-a', 'reseller-b']);
    expect(JSON.stringify(env)).not.toMatch(/apiKey|UPSTREAM_KEY"|SecretString/);
  });

  it('clients see the models as the README shows them, and no upstream', () => {
    const shown = [...section.matchAll(/^#\s+(\{"id":.*?\})(?:,|\]\})$/gm)].map((m) => JSON.parse(m[1]!) as unknown);
    const config = parseConfig(deployTimeEnvironment(variables('query')));
    expect(shown).toEqual(Object.values(config.catalog.models).map(publicModel));
    expect(JSON.stringify(shown)).not.toMatch(/reseller|duomi|aws|luma\.ray|doubao/);
  });

  it('fits Lambda’s 4 KB environment, as the README says', () => {
    const bytes = Buffer.byteLength(String(variables('submit').UPSTREAMS) + String(variables('submit').MODELS));
    expect(bytes).toBeLessThan(1000);
    expect(bytes).toBeGreaterThan(800);
  });

  it('one secret per keyed upstream, named in the outputs; none for Bedrock', () => {
    const secrets = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    expect(secrets.map((r) => r.Properties!.Description as string).sort()).toEqual([
      'Video Task Gateway: API key of the upstream duomi (set it with put-secret-value)',
      'Video Task Gateway: API key of the upstream reseller-a (set it with put-secret-value)',
      'Video Task Gateway: API key of the upstream reseller-b (set it with put-secret-value)',
      'Video Task Gateway: HMAC key of the upstream callback tokens',
    ]);
    for (const [output, upstream] of [['UpstreamKeyResellerASecretArn', 'reseller-a'], ['UpstreamKeyResellerBSecretArn', 'reseller-b'], ['UpstreamKeyDuomiSecretArn', 'duomi']] as const) {
      expect(s.json.Outputs[output]!.Value).toEqual({ Ref: s.id(s.stack.secrets.upstreamKeys.get(upstream)!) });
      expect(readme).toContain(`--secret-id <${output} output>`);
    }
    expect(Object.keys(s.json.Outputs).filter((o) => o.startsWith('UpstreamKey'))).toHaveLength(3);
  });

  it('only the Lambdas that call upstreams may read the keys', () => {
    for (const name of lambdaNames) {
      const reads = grantsOf(name, /^secretsmanager:GetSecretValue/).filter((g) => !g.includes('CallbackSecret'));
      const callsUpstreams = ['submit', 'callback', 'archive', 'reconcile', 'poll'].includes(name);
      expect(reads, name).toHaveLength(callsUpstreams ? 3 : 0);
    }
  });

  it('Bedrock: submit, reconcile and poll invoke luma.ray-v2:0 in us-west-2 only, and write only under bedrock/', () => {
    const expected = [
      'bedrock:GetAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2:<AWS::AccountId>:async-invoke/*',
      'bedrock:InvokeModel arn:<AWS::Partition>:bedrock:us-west-2::foundation-model/luma.ray-v2:0',
      'bedrock:ListAsyncInvokes *',
      'bedrock:StartAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2::foundation-model/luma.ray-v2:0',
      'bedrock:StartAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2:<AWS::AccountId>:async-invoke/*',
      's3:PutObject bucket/bedrock/*',
    ];
    for (const name of ['submit', 'reconcile', 'poll'] as const) expect(grantsOf(name, /^bedrock:|bedrock\/\*/), name).toEqual(expected);
    expect(grantsOf('archive', /^bedrock:|bedrock\/\*/)).toEqual(['s3:DeleteObject bucket/bedrock/*', 's3:GetObject bucket/bedrock/*']);
    for (const name of ['query', 'callback', 'notify', 'console'] as const) expect(grantsOf(name, /^bedrock:|bedrock\/\*/), name).toEqual([]);
  });

  it('Bedrock’s output nobody archived expires, under bedrock/ only', () => {
    const rules = s.json.Resources[s.id(s.stack.storage.bucket)]!.Properties!.LifecycleConfiguration.Rules as { Id?: string; Prefix?: string }[];
    expect(rules).toContainEqual(expect.objectContaining({ Id: 'expire-unarchived-bedrock-output', Prefix: 'bedrock/', ExpirationInDays: 7 }));
  });

  it('the dashboard and alarms know the example’s models and upstreams', () => {
    const dashboard = Object.values(s.json.Resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!;
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    for (const name of ['seedance-2.0', 'ray-2', 'reseller-a', 'reseller-b', 'aws']) expect(body).toContain(name);
  });
});

function descriptionOf(name: LambdaName): string {
  return s.json.Resources[s.functionIds[name]]!.Properties!.Description as string;
}
