import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { localCredentials, stackDefinitions, startEmbeddedAws } from '../../local/embedded-aws';
import { synthesizeTemplate } from '../../lib/synthesize-template';

const definitions = stackDefinitions(synthesizeTemplate() as { Resources: Record<string, { Type: string }> });
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

type Where = 'in-process' | 'own-process';
const start = (dataDir: string, dynamodb: Where) => startEmbeddedAws({ dataDir, tableName: 'tasks', bucketName: 'videos', definitions, dynamodb });
const client = (endpoint: string) => new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: localCredentials, maxAttempts: 1 });
// One task's update as the store writes it: the due index moves, so dynalite also rewrites its index entry.
const update = (n: number) =>
  new UpdateItemCommand({
    TableName: 'tasks',
    Key: { pk: { S: 'task#close' } },
    UpdateExpression: 'SET #open = :open, due_at = :due ADD updates :one',
    ExpressionAttributeNames: { '#open': 'open' },
    ExpressionAttributeValues: { ':open': { S: 'open#1' }, ':due': { N: String(n) }, ':one': { N: '1' } },
  });

// In this process (npm start, the tests) and in a process of its own (the benchmarks).
describe.each<Where>(['in-process', 'own-process'])('closing the embedded DynamoDB (%s) while a task is being updated', (where) => {
  it('answers every update it had begun, keeps each answered one, and turns the rest away at the client', async () => {
    // Several rounds: the updates of one item queue on dynalite's item lock, and each close
    // lands at another point of that queue.
    for (let round = 0; round < 3; round++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'vtg-close-'));
      dirs.push(dataDir);
      const aws = await start(dataDir, where);
      const db = client(aws.dynamodbEndpoint);
      await Promise.all(Array.from({ length: 40 }, (_, n) => db.send(update(n))));
      const warm = 40;

      let answered = 0;
      let answeredAfterClose = 0;
      let closing = false;
      const failures: string[] = [];
      const updates = Array.from({ length: 60 }, (_, n) =>
        db.send(update(warm + n)).then(
          () => {
            answered += 1;
            if (closing) answeredAfterClose += 1;
          },
          (error: Error & { $metadata?: { httpStatusCode?: number } }) => failures.push(error.$metadata?.httpStatusCode === 503 ? '503' : error.name),
        ),
      );
      await Promise.race(updates);
      closing = true;
      await aws.close();
      await Promise.all(updates);
      db.destroy();

      expect(answered + failures.length).toBe(60);
      // Updates dynalite had begun when the close came were answered, not cut off.
      expect(answeredAfterClose).toBeGreaterThan(0);
      // The others never reached the table: refused (503) or their connection ended.
      for (const failure of failures) expect(['503', 'TimeoutError', 'Error']).toContain(failure);

      const reopened = await start(dataDir, where);
      const check = client(reopened.dynamodbEndpoint);
      const { Item } = await check.send(new GetItemCommand({ TableName: 'tasks', Key: { pk: { S: 'task#close' } }, ConsistentRead: true }));
      check.destroy();
      await reopened.close();
      expect(Number(Item?.updates?.N)).toBe(warm + answered);
    }
  }, 60_000);

  it('is gone once closed: its port refuses connections', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vtg-close-'));
    dirs.push(dataDir);
    const aws = await start(dataDir, where);
    const db = client(aws.dynamodbEndpoint);
    await db.send(update(1));
    await aws.close();
    await expect(db.send(update(2))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    db.destroy();
  });
});
