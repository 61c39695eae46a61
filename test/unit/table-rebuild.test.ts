import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { ensureLocalTable } from '../../local/table-rebuild';
import { taskTableDefinition } from './dynalite';

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

const before = taskTableDefinition('unused', tableSchema.legacyByOwner);
const now = taskTableDefinition('unused');

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
