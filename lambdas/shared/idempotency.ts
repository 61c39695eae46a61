import { createHash } from 'node:crypto';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { conditionalPut } from './aws/conditional-put';

/** How long an `Idempotency-Key` is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
export const MAX_IDEMPOTENCY_KEY = 255;

export type Claim = { kind: 'new' } | { kind: 'replay'; taskId: string } | { kind: 'conflict' };

/** Fingerprint of a request body, so a key reused with another body is told apart. */
export const fingerprint = (request: unknown) => createHash('sha256').update(JSON.stringify(request)).digest('hex');

/**
 * Idempotency keys, scoped to the API key. The first request with a key claims it for its
 * task id; a retry with the same body gets that id back, with another body a conflict.
 */
export class IdempotencyStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async claim(owner: string, key: string, print: string, taskId: string, now = Date.now()): Promise<Claim> {
    const pk = `IDEM#${owner}#${key}`;
    const claimed = await conditionalPut(this.db, {
      TableName: this.table,
      Item: { pk, task_id: taskId, fingerprint: print, expires_at: Math.floor(now / 1000) + IDEMPOTENCY_TTL_SECONDS },
      // Table TTL deletes lazily: an expired claim may still be there and is free to take.
      ConditionExpression: 'attribute_not_exists(pk) OR expires_at < :now',
      ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
    });
    if (claimed) return { kind: 'new' };
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true }));
    if (!Item) return this.claim(owner, key, print, taskId, now);
    return Item.fingerprint === print ? { kind: 'replay', taskId: String(Item.task_id) } : { kind: 'conflict' };
  }
}
