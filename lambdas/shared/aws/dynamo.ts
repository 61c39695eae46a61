import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config';

let client: DynamoDBDocumentClient | undefined;

/** The process's DynamoDB document client, made on first use. */
export function dynamo(): DynamoDBDocumentClient {
  client ??= DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: config().DYNAMODB_ENDPOINT, maxAttempts: 4 }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  return client;
}
