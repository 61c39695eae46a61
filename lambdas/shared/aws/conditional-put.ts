import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient, type PutCommandInput } from '@aws-sdk/lib-dynamodb';

/** A put with a `ConditionExpression`: true when written, false when the condition did not hold. */
export async function conditionalPut(db: DynamoDBDocumentClient, input: PutCommandInput): Promise<boolean> {
  try {
    await db.send(new PutCommand(input));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
