import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { ensureLocalTable } from '../../local/table-rebuild';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
let db: DynamoDBClient;
let table: string;
let n = 0;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  db = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  db.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  table = `local-${++n}`;
});

/** A table definition with the owner index under the given name and projection. */
function definition(owner: { indexName: string; projection: 'ALL' | 'KEYS_ONLY' }): CreateTableCommandInput {
  const { partitionKey, byDue } = tableSchema;
  const index = (name: string, hash: string, range: string, projection: 'ALL' | 'KEYS_ONLY') => ({
    IndexName: name,
    KeySchema: [
      { AttributeName: hash, KeyType: 'HASH' as const },
      { AttributeName: range, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: projection },
  });
  return {
    TableName: 'unused',
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' },
      { AttributeName: 'owner', AttributeType: 'S' },
      { AttributeName: 'id', AttributeType: 'S' },
      { AttributeName: byDue.partitionKey, AttributeType: 'S' },
      { AttributeName: byDue.sortKey, AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [index(owner.indexName, 'owner', 'id', owner.projection), index(byDue.indexName, byDue.partitionKey, byDue.sortKey, 'ALL')],
  };
}
const before = definition(tableSchema.legacyByOwner);
const now = definition(tableSchema.byOwner);

async function seed(name: string, count: number) {
  for (let i = 0; i < count; i++) {
    await db.send(
      new PutItemCommand({
        TableName: name,
        Item: { pk: { S: `TASK#t${i}` }, id: { S: `t${i}` }, owner: { S: 'owner-a' }, prompt: { S: `prompt ${i}` } },
      }),
    );
  }
}
const items = async (name: string) =>
  ((await db.send(new ScanCommand({ TableName: name }))).Items ?? []).map((i) => `${i.pk!.S} ${i.prompt?.S}`).sort();
const indexNames = async (name: string) =>
  ((await db.send(new DescribeTableCommand({ TableName: name }))).Table!.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort();
const tables = async () => (await db.send(new ListTablesCommand({}))).TableNames ?? [];

describe('the local table', () => {
  it('is created when missing, and kept as it is when its indexes are the stack’s', async () => {
    expect(await ensureLocalTable(db, now, table)).toBe('created');
    await seed(table, 3);
    expect(await ensureLocalTable(db, now, table)).toBe('kept');
    expect(await items(table)).toHaveLength(3);
  });

  it('from a data directory with the earlier owner index is rebuilt with the new one, every item kept', async () => {
    await db.send(new CreateTableCommand({ ...before, TableName: table }));
    await seed(table, 60);
    const was = await items(table);
    expect(await ensureLocalTable(db, now, table)).toBe('rebuilt');
    expect(await indexNames(table)).toEqual(['byDue', 'byOwnerKeys']);
    expect(await items(table)).toEqual(was);
    const listed = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'byOwnerKeys',
        KeyConditionExpression: '#o = :o',
        ExpressionAttributeNames: { '#o': 'owner' },
        ExpressionAttributeValues: { ':o': { S: 'owner-a' } },
      }),
    );
    expect(listed.Items).toHaveLength(60);
    expect(await tables()).not.toContain(`${table}-rebuild`);
  });

  it('killed after the copy was complete and the old table dropped: the next start restores every item from the copy', async () => {
    await db.send(new CreateTableCommand({ ...now, TableName: `${table}-rebuild` }));
    await seed(`${table}-rebuild`, 5);
    await db.send(new PutItemCommand({ TableName: `${table}-rebuild`, Item: { pk: { S: 'LOCAL#rebuild-copy-complete' } } }));
    // The old table half recreated, as a kill during the restore leaves it.
    await db.send(new CreateTableCommand({ ...now, TableName: table }));
    await seed(table, 2);
    expect(await ensureLocalTable(db, now, table)).toBe('rebuilt');
    expect(await items(table)).toEqual(['TASK#t0 prompt 0', 'TASK#t1 prompt 1', 'TASK#t2 prompt 2', 'TASK#t3 prompt 3', 'TASK#t4 prompt 4']);
    expect(await tables()).not.toContain(`${table}-rebuild`);
  });

  it('killed while copying: the partial copy is dropped and the whole old table rebuilt', async () => {
    await db.send(new CreateTableCommand({ ...before, TableName: table }));
    await seed(table, 4);
    await db.send(new CreateTableCommand({ ...now, TableName: `${table}-rebuild` }));
    await seed(`${table}-rebuild`, 1);
    expect(await ensureLocalTable(db, now, table)).toBe('rebuilt');
    expect(await items(table)).toHaveLength(4);
    expect(await indexNames(table)).toEqual(['byDue', 'byOwnerKeys']);
  });
});
