import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { cdkJsonContext } from '../../lib/cdk-context';
import { synthesizeTemplate } from '../../lib/synthesize-template';
import { synthesizeGateway } from './support';

const ofType = (template: Record<string, any>, type: string) =>
  Object.values<any>(template.Resources).filter((r) => r.Type === type);

describe('synthesizeTemplate (for the local runtime)', () => {
  let template: Record<string, any>;
  let elapsed: number;
  beforeAll(() => {
    const started = Date.now();
    template = synthesizeTemplate();
    elapsed = Date.now() - started;
  });

  it('returns the template, offline and fast (no bundling)', () => {
    expect(elapsed).toBeLessThan(5000);
    expect(template.Resources).toBeTypeOf('object');
  });

  it('holds the table the local runtime creates: keys, attribute types and indexes', () => {
    const [table] = ofType(template, 'AWS::DynamoDB::Table');
    const { KeySchema, AttributeDefinitions, GlobalSecondaryIndexes } = table.Properties;
    expect(KeySchema).toEqual([{ AttributeName: tableSchema.partitionKey, KeyType: 'HASH' }]);
    expect(AttributeDefinitions).toHaveLength(5);
    expect(GlobalSecondaryIndexes.map((i: any) => i.IndexName)).toEqual([
      tableSchema.byOwner.indexName,
      tableSchema.byDue.indexName,
    ]);
  });

  it('holds the bucket notification filter', () => {
    const [notifications] = ofType(template, 'Custom::S3BucketNotifications');
    const [topic] = notifications.Properties.NotificationConfiguration.TopicConfigurations;
    expect(topic.Events).toEqual(['s3:ObjectCreated:*']);
    expect(topic.Filter.Key.FilterRules).toEqual(
      expect.arrayContaining([
        { Name: 'prefix', Value: 'videos/' },
        { Name: 'suffix', Value: '.mp4' },
      ]),
    );
  });

  it('does not read the environment: the same template on every machine', () => {
    const saved = process.env.UPSTREAM_BASE_URL;
    process.env.UPSTREAM_BASE_URL = 'https://elsewhere.example';
    try {
      const [fn] = ofType(synthesizeTemplate(), 'AWS::Lambda::Function').filter((f) => f.Properties.Environment);
      expect(JSON.parse(fn.Properties.Environment.Variables.UPSTREAMS)).toEqual([{ name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com' }]);
    } finally {
      if (saved === undefined) delete process.env.UPSTREAM_BASE_URL;
      else process.env.UPSTREAM_BASE_URL = saved;
    }
  });
});

describe('cdk.json', () => {
  it('carries the recommended feature flags of the pinned aws-cdk-lib, and the test syntheses use them', () => {
    const require = createRequire(import.meta.url);
    const recommended = JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/recommended-feature-flags.json'), 'utf8')) as Record<string, unknown>;
    const context = cdkJsonContext();
    for (const [flag, value] of Object.entries(recommended)) expect(context[flag], flag).toEqual(value);
    const { app } = synthesizeGateway();
    for (const [flag, value] of Object.entries(recommended)) expect(app.node.tryGetContext(flag), flag).toEqual(value);
  });
});
