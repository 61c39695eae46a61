import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  ResourceNotFoundException,
  ScanCommand,
  type AttributeValue,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';

/** The item that marks a rebuild's copy as complete: from then on the copy, not the old table, holds the data. */
const COPY_COMPLETE = { pk: { S: 'LOCAL#rebuild-copy-complete' } };

/**
 * The local table with the stack's current key design: created when missing, and rebuilt with
 * every item when a data directory from an earlier version has other indexes (the embedded
 * DynamoDB cannot add an index to a table). The items go to a copy first, which a marker
 * item declares complete before the old table is dropped, so a process killed at any step
 * finds, on its next start, either the old table whole or a complete copy to restore from.
 */
export async function ensureLocalTable(db: DynamoDBClient, definition: CreateTableCommandInput, name: string): Promise<'created' | 'kept' | 'rebuilt'> {
  const copyName = `${name}-rebuild`;
  const copy = await describe(db, copyName);
  if (copy && (await db.send(new GetItemCommand({ TableName: copyName, Key: COPY_COMPLETE, ConsistentRead: true }))).Item) {
    await restore(db, definition, name, copyName);
    return 'rebuilt';
  }
  if (copy) await db.send(new DeleteTableCommand({ TableName: copyName })); // a copy cut short: the old table is whole
  const table = await describe(db, name);
  if (!table) {
    await create(db, definition, name);
    return 'created';
  }
  if (indexesOf(table) === indexesOf(definition)) return 'kept';
  await create(db, definition, copyName);
  await copyItems(db, name, copyName);
  await db.send(new PutItemCommand({ TableName: copyName, Item: COPY_COMPLETE }));
  await restore(db, definition, name, copyName);
  return 'rebuilt';
}

/** The table anew from the complete copy, then the copy dropped. */
async function restore(db: DynamoDBClient, definition: CreateTableCommandInput, name: string, copyName: string): Promise<void> {
  if (await describe(db, name)) await db.send(new DeleteTableCommand({ TableName: name }));
  await create(db, definition, name);
  await copyItems(db, copyName, name);
  await db.send(new DeleteTableCommand({ TableName: copyName }));
}

/** A table's secondary indexes, as one comparable string. */
function indexesOf(table: Pick<TableDescription, 'GlobalSecondaryIndexes'>): string {
  return (table.GlobalSecondaryIndexes ?? [])
    .map((i) => `${i.IndexName} ${i.Projection?.ProjectionType} ${(i.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',')}`)
    .sort()
    .join('; ');
}

async function describe(db: DynamoDBClient, name: string): Promise<TableDescription | undefined> {
  try {
    return (await db.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

async function create(db: DynamoDBClient, definition: CreateTableCommandInput, name: string): Promise<void> {
  await db.send(new CreateTableCommand({ ...definition, TableName: name }));
  while ((await describe(db, name))?.TableStatus !== 'ACTIVE') await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Every item of one table into another (the marker excepted), 25 at a time, as BatchWriteItem takes them. */
async function copyItems(db: DynamoDBClient, from: string, to: string): Promise<void> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: from, ExclusiveStartKey: start, ConsistentRead: true }));
    const items = (page.Items ?? []).filter((i) => i.pk?.S !== COPY_COMPLETE.pk.S);
    for (let i = 0; i < items.length; i += 25) {
      let writes = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      while (writes.length) {
        const answer = await db.send(new BatchWriteItemCommand({ RequestItems: { [to]: writes } }));
        writes = (answer.UnprocessedItems?.[to] ?? []) as typeof writes;
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
}
