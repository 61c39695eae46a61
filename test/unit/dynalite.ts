import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll } from 'vitest';
import { tableSchema } from '../../lambdas/shared/table-schema';

export interface EmbeddedDynamo {
  /** The document client the gateway's stores take (undefined values removed, as in the handlers). */
  readonly db: DynamoDBDocumentClient;
  /** A new table of the gateway's shape (key and both indexes), named `<prefix>-<n>`. */
  newTable(prefix: string): Promise<string>;
}

/**
 * An embedded DynamoDB for one test file: started before its tests and stopped after them.
 * Tests take tables of their own (`newTable` in a `beforeEach`), so what one test leaves
 * behind is not another's.
 */
export function embeddedDynamo(): EmbeddedDynamo {
  let server: Server;
  let raw: DynamoDBClient;
  let db: DynamoDBDocumentClient;
  let tables = 0;

  beforeAll(async () => {
    server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    raw = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    db = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  });

  afterAll(async () => {
    db?.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  return {
    get db() {
      return db;
    },
    async newTable(prefix) {
      const name = `${prefix}-${++tables}`;
      await raw.send(new CreateTableCommand(taskTableDefinition(name)));
      return name;
    },
  };
}

type IndexSchema = { indexName: string; partitionKey: string; sortKey: string; projection: 'ALL' | 'KEYS_ONLY' };
const index = ({ indexName, partitionKey, sortKey, projection }: IndexSchema) => ({
  IndexName: indexName,
  KeySchema: [
    { AttributeName: partitionKey, KeyType: 'HASH' as const },
    { AttributeName: sortKey, KeyType: 'RANGE' as const },
  ],
  Projection: { ProjectionType: projection },
});

/** The task table as lambdas/shared/table-schema.ts lays it out, with the given owner index (the current one unless told). */
export function taskTableDefinition(name: string, ownerIndex: IndexSchema = tableSchema.byOwner): CreateTableCommandInput {
  const { partitionKey, byDue } = tableSchema;
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' },
      { AttributeName: ownerIndex.partitionKey, AttributeType: 'S' },
      { AttributeName: ownerIndex.sortKey, AttributeType: 'S' },
      { AttributeName: byDue.partitionKey, AttributeType: 'S' },
      { AttributeName: byDue.sortKey, AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [index(ownerIndex), index(byDue)],
  };
}
