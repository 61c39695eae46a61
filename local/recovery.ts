import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TaskRecord } from '../lambdas/shared/contracts/task';
import { tableSchema } from '../lambdas/shared/table-schema';
import { openTaskItems } from '../lambdas/shared/task-store';

/** The leases a worker takes on a task; locally, every one found at start is a dead worker's. */
const LEASES = ['archive_lease_until'] as const satisfies readonly (keyof TaskRecord)[];

/**
 * At the start of `npm start`, hand back the tasks that workers of the last process held.
 * The data directory is locked, so no live worker can hold a lease now; left alone, a task
 * whose archive worker died would wait out the whole lease (16 minutes) before anyone may
 * take it. In the cloud a lease does that job (a Lambda that dies is not known to be dead);
 * here the lock proves it. Each lease is removed only if it is still the one seen, and the
 * task made due now so the reconciler sends its job again should the queue have lost it.
 */
export async function releaseDeadWorkersLeases(db: DynamoDBDocumentClient, table: string, now = Date.now()): Promise<string[]> {
  const released: string[] = [];
  for await (const item of openTaskItems(db, table)) {
    for (const lease of LEASES) {
      if (typeof item[lease] !== 'number') continue;
      try {
        await db.send(
          new UpdateCommand({
            TableName: table,
            Key: { [tableSchema.partitionKey]: item[tableSchema.partitionKey] },
            UpdateExpression: 'REMOVE #lease SET #due = :now',
            ConditionExpression: '#lease = :seen',
            ExpressionAttributeNames: { '#lease': lease, '#due': tableSchema.byDue.sortKey },
            ExpressionAttributeValues: { ':seen': item[lease], ':now': now },
          }),
        );
        released.push(String(item.id));
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
  }
  return released;
}
