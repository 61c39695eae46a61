import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModels, parseUpstreams, type Catalog } from '../../lambdas/shared/catalog';
import { BedrockAccess, bedrockModelGrants } from '../../lib/bedrock-access';
import { asArray, render } from './support';

/** The README's worked example: two resellers, duomi and Bedrock. */
const upstreams = parseUpstreams([
  { name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com' },
  { name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1' },
  { name: 'reseller-b', kind: 'openai', baseUrl: 'https://api.reseller-b.example/v1' },
  { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
]);
const catalog: Catalog = {
  upstreams,
  models: parseModels(
    {
      'sora-2': { durations: [10, 15], routes: [{ upstream: 'duomi', model: 'sora-2' }] },
      'ray-2': { durations: [5, 9], maxImages: 0, routes: [{ upstream: 'aws', model: 'luma.ray-v2:0', resolution: '720p' }, { upstream: 'reseller-a', model: 'luma-ray-2' }] },
      'ray-2-fast': { durations: [5], maxImages: 0, routes: [{ upstream: 'aws', model: 'luma.ray-v2:0', resolution: '540p' }] },
      seedance: { durations: [5, 10], routes: [{ upstream: 'reseller-b', model: 'doubao-seedance-2-0-pro' }] },
    },
    upstreams,
  ),
};

interface Statement {
  Action: string | string[];
  Resource: unknown;
}

const outdirs: string[] = [];
afterAll(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function build(grants = bedrockModelGrants(catalog), withNag = false) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-bedrock-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  if (withNag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = new Stack(app, 'Gateway', { env: { account: '123456789012', region: 'eu-west-1' } });
  const bucket = new s3.Bucket(stack, 'VideoBucket', { enforceSSL: true, encryption: s3.BucketEncryption.S3_MANAGED });
  Validations.of(bucket).acknowledge({ id: 'AwsSolutions-S1', reason: 'the gateway stack gives the real bucket its access logs; not what this test is about' });
  const role = (id: string) => ({ role: new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }) });
  const callers = [role('Submit'), role('Reconcile'), role('Poll')];
  const archiver = role('Archive');
  const other = role('Query');
  new BedrockAccess(stack, 'BedrockAccess', { bucket, models: grants, callers, archiver });
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: any }> };
  const statementsOf = (r: { role: iam.IRole }): Statement[] => {
    const id = stack.getLogicalId(r.role.node.defaultChild as never);
    return Object.values(json.Resources)
      .filter((res) => res.Type === 'AWS::IAM::Policy' && asArray(res.Properties.Roles).some((x: any) => x.Ref === id))
      .flatMap((res) => res.Properties.PolicyDocument.Statement as Statement[]);
  };
  const bucketId = stack.getLogicalId(bucket.node.defaultChild as never);
  const resources = (s: Statement) => asArray(s.Resource).map((r) => render(r).replace(`<${bucketId}.Arn>`, 'videoBucket'));
  const grantsOf = (r: { role: iam.IRole }) => statementsOf(r).flatMap((s) => asArray(s.Action).map((a) => `${a} ${resources(s).join(' ')}`)).sort();
  return { app, stack, json, callers, archiver, other, grantsOf, bucketId };
}

// The first synthesis loads aws-cdk-lib, which takes long on a busy machine.
describe('Bedrock access (lib/bedrock-access.ts)', { timeout: 90_000 }, () => {
  it('finds each Bedrock model the catalog routes to once, in its upstream region', () => {
    expect(bedrockModelGrants(catalog)).toEqual([{ region: 'us-west-2', modelId: 'luma.ray-v2:0' }]);
  });

  it('lets the callers invoke only the configured model, read and list invocations, and write only under bedrock/', () => {
    const { callers, grantsOf } = build();
    for (const caller of callers)
      expect(grantsOf(caller)).toEqual(
        [
          'bedrock:InvokeModel arn:<AWS::Partition>:bedrock:us-west-2::foundation-model/luma.ray-v2:0',
          'bedrock:StartAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2::foundation-model/luma.ray-v2:0',
          'bedrock:StartAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2:123456789012:async-invoke/*',
          'bedrock:GetAsyncInvoke arn:<AWS::Partition>:bedrock:us-west-2:123456789012:async-invoke/*',
          'bedrock:ListAsyncInvokes *',
          's3:PutObject videoBucket/bedrock/*',
        ].sort(),
      );
  });

  it('lets the archive function read and delete under bedrock/ and nothing of Bedrock; other functions get nothing', () => {
    const { archiver, other, grantsOf } = build();
    expect(grantsOf(archiver)).toEqual(['s3:DeleteObject videoBucket/bedrock/*', 's3:GetObject videoBucket/bedrock/*']);
    expect(grantsOf(other)).toEqual([]);
  });

  it('an inference profile is granted with the model it routes to, in any region', () => {
    const { callers, grantsOf } = build([{ region: 'us-east-1', modelId: 'us.luma.ray-v2:0' }]);
    expect(grantsOf(callers[0]!).filter((g) => g.startsWith('bedrock:InvokeModel'))).toEqual([
      'bedrock:InvokeModel arn:<AWS::Partition>:bedrock:us-east-1:123456789012:inference-profile/us.luma.ray-v2:0 arn:<AWS::Partition>:bedrock:*::foundation-model/luma.ray-v2:0',
    ]);
  });

  it('expires output nobody archived, under bedrock/ only', () => {
    const { json } = build();
    const bucket = Object.values(json.Resources).find((r) => r.Type === 'AWS::S3::Bucket')!;
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual([{ Id: 'expire-unarchived-bedrock-output', Prefix: 'bedrock/', ExpirationInDays: 7, Status: 'Enabled' }]);
  });

  it('grants nothing and adds no rule when no route goes to Bedrock', () => {
    const { callers, archiver, grantsOf, json } = build([]);
    for (const r of [...callers, archiver]) expect(grantsOf(r)).toEqual([]);
    const bucket = Object.values(json.Resources).find((r) => r.Type === 'AWS::S3::Bucket')!;
    expect(bucket.Properties.LifecycleConfiguration).toBeUndefined();
  });

  it('passes cdk-nag: each wildcard it needs is acknowledged with its reason', () => {
    for (const grants of [bedrockModelGrants(catalog), [{ region: 'us-east-1', modelId: 'us.luma.ray-v2:0' }]]) {
      const { app } = build(grants, true);
      expect(() => app.synth()).not.toThrow();
    }
  });
});
