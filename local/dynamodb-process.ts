import { dynamoInProcess } from './embedded-dynamo';

/**
 * The embedded DynamoDB in a process of its own (`dynamoInOwnProcess`):
 * `node --import tsx local/dynamodb-process.ts <dir> <host>` prints `{"port":…}` once it
 * listens; when its standard input closes (its parent stopped it, or died) it stops as the
 * in-process one does, prints `{"unanswered":…}` and exits.
 */
const [path, host] = process.argv.slice(2);
const dynamo = await dynamoInProcess(path!, host!);
process.stdout.write(`${JSON.stringify({ port: Number(new URL(dynamo.endpoint).port) })}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  const unanswered = await dynamo.close();
  process.stdout.write(`${JSON.stringify({ unanswered })}\n`, () => process.exit(0));
});
