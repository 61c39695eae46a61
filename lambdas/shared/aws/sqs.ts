import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { config } from '../config';

let client: SQSClient | undefined;

function sqs(): SQSClient {
  client ??= new SQSClient({ endpoint: config().SQS_ENDPOINT });
  return client;
}

/** SQS caps a message's delay at 15 minutes; longer waits are re-sent in steps by the consumer. */
export const MAX_DELAY_SECONDS = 900;

export async function sendJob(queueUrl: string, job: object, delaySeconds = 0): Promise<void> {
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(job),
      // Rounded up: a wait with less than a second left must not come back at once, again and again.
      DelaySeconds: Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil(delaySeconds))),
    }),
  );
}
