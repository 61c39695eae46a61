import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { startSchedule } from '../../local/schedule';
import { startLocalSqs, type LocalSqs, type LocalSqsOptions } from '../../local/sqs';

// 0.01: a 10 s visibility timeout lasts 100 ms, DelaySeconds 20 lasts 200 ms.
const TIME_SCALE = 0.01;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(options: LocalSqsOptions = {}): Promise<{ sqs: LocalSqs; client: SQSClient }> {
  const sqs = await startLocalSqs({ timeScale: TIME_SCALE, pollIntervalMs: 10, ...options });
  const client = new SQSClient({
    endpoint: sqs.endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  cleanups.push(async () => {
    client.destroy();
    await sqs.close();
  });
  return { sqs, client };
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'local-sqs-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A consumer that records every record it is given, at the time it was given. */
function recorder(answer: (record: SQSRecord) => 'ok' | 'fail' = () => 'ok') {
  const seen: { record: SQSRecord; at: number; batch: number }[] = [];
  let batches = 0;
  const consumer = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    batches += 1;
    for (const record of event.Records) seen.push({ record, at: Date.now(), batch: batches });
    return {
      batchItemFailures: event.Records.filter((r) => answer(r) === 'fail').map((r) => ({ itemIdentifier: r.messageId })),
    };
  };
  return { seen, consumer };
}

describe('local SQS', () => {
  it('delivers a message sent with the SDK to its consumer as a Lambda SQS event', async () => {
    const { sqs, client } = await start({ region: 'eu-west-1' });
    const events: SQSEvent[] = [];
    const queueUrl = sqs.createQueue('archive', {
      consumer: async (event) => {
        events.push(event);
      },
    });
    expect(queueUrl).toBe(`http://127.0.0.1:${sqs.port}/000000000000/archive`);

    const body = JSON.stringify({ taskId: 'tsk_1', note: 'ünïcode ✓' });
    const sent = await client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'archive' },
          attempt: { DataType: 'Number', StringValue: '2' },
          raw: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      }),
    );
    expect(sent.MD5OfMessageBody).toBe(createHash('md5').update(body).digest('hex'));
    await sqs.drain({ timeoutMs: 2000 });

    expect(events).toHaveLength(1);
    const records = events[0]!.Records;
    expect(records).toHaveLength(1);
    const record = records[0]!;
    expect(record).toMatchObject({
      messageId: sent.MessageId,
      body,
      md5OfBody: sent.MD5OfMessageBody,
      md5OfMessageAttributes: sent.MD5OfMessageAttributes,
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:000000000000:archive',
      awsRegion: 'eu-west-1',
      messageAttributes: {
        kind: { stringValue: 'archive', stringListValues: [], binaryListValues: [], dataType: 'String' },
        attempt: { stringValue: '2', stringListValues: [], binaryListValues: [], dataType: 'Number' },
        raw: { binaryValue: 'AQID', stringListValues: [], binaryListValues: [], dataType: 'Binary' },
      },
    });
    expect(record.receiptHandle).toEqual(expect.any(String));
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(record.attributes.SentTimestamp)).toBeLessThanOrEqual(Number(record.attributes.ApproximateFirstReceiveTimestamp));
    expect(sqs.counts('archive')).toEqual({ visible: 0, delayed: 0, inFlight: 0, dlq: 0 });
  });

  it('holds a message sent with DelaySeconds until the (scaled) delay has passed', async () => {
    const { sqs, client } = await start();
    const { seen, consumer } = recorder();
    const queueUrl = sqs.createQueue('notify', { consumer });

    const sentAt = Date.now();
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'later', DelaySeconds: 20 }));
    expect(sqs.counts('notify')).toMatchObject({ delayed: 1, visible: 0 });
    await sleep(80);
    expect(seen).toHaveLength(0);
    await sqs.drain({ timeoutMs: 2000 });

    expect(seen).toHaveLength(1);
    expect(seen[0]!.at - sentAt).toBeGreaterThanOrEqual(190);
  });

  it('redelivers a failing message after the visibility timeout, then moves it to the dead-letter queue', async () => {
    const logs: string[] = [];
    const { sqs } = await start({ log: (msg) => logs.push(msg) });
    const attempts: { count: string; at: number }[] = [];
    sqs.createQueue('archive', {
      visibilityTimeoutSeconds: 10,
      maxReceiveCount: 3,
      deadLetterQueue: 'archive-dlq',
      consumer: async (event) => {
        attempts.push({ count: event.Records[0]!.attributes.ApproximateReceiveCount, at: Date.now() });
        throw new Error('upstream video unreachable');
      },
    });

    const messageId = sqs.sendMessage('archive', '{"taskId":"tsk_2"}');
    await sqs.drain({ timeoutMs: 3000 });

    expect(attempts.map((a) => a.count)).toEqual(['1', '2', '3']);
    for (let i = 1; i < attempts.length; i++) expect(attempts[i]!.at - attempts[i - 1]!.at).toBeGreaterThanOrEqual(95);
    expect(sqs.counts('archive')).toEqual({ visible: 0, delayed: 0, inFlight: 0, dlq: 1 });
    expect(sqs.peek('archive-dlq')).toMatchObject([{ messageId, body: '{"taskId":"tsk_2"}' }]);
    expect(logs).toContain('sqs message moved to dead-letter queue');
  });

  it('drops a message that used up its receives when the queue has no dead-letter queue, and says so', async () => {
    const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
    const { sqs } = await start({ log: (msg, fields) => logs.push({ msg, fields }) });
    const { seen, consumer } = recorder(() => 'fail');
    sqs.createQueue('notify', { visibilityTimeoutSeconds: 5, maxReceiveCount: 2, consumer });

    const messageId = sqs.sendMessage('notify', 'x');
    await sqs.drain({ timeoutMs: 2000 });

    expect(seen.map((s) => s.record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    expect(sqs.peek('notify')).toEqual([]);
    expect(logs.find((l) => l.msg.startsWith('sqs message dropped'))?.fields).toMatchObject({ messageId, receiveCount: 2 });
  });

  it('redelivers only the records named in batchItemFailures', async () => {
    const { sqs, client } = await start();
    const queueUrl = sqs.createQueue('archive', { visibilityTimeoutSeconds: 5, batchSize: 10 });
    const sent = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: ['a', 'b', 'c', 'd', 'e'].map((id) => ({ Id: id, MessageBody: `body-${id}` })),
      }),
    );
    expect(sent.Successful?.map((s) => s.Id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(sent.Failed).toEqual([]);
    for (const entry of sent.Successful ?? []) {
      expect(entry.MD5OfMessageBody).toBe(createHash('md5').update(`body-${entry.Id}`).digest('hex'));
    }

    const { seen, consumer } = recorder((r) =>
      (r.body === 'body-b' || r.body === 'body-d') && r.attributes.ApproximateReceiveCount === '1' ? 'fail' : 'ok',
    );
    sqs.createQueue('archive', { consumer });
    await sqs.drain({ timeoutMs: 2000 });

    const firstBatch = seen.filter((s) => s.batch === 1).map((s) => s.record.body);
    const retried = seen.filter((s) => s.batch > 1).map((s) => `${s.record.body}#${s.record.attributes.ApproximateReceiveCount}`);
    expect(firstBatch).toEqual(['body-a', 'body-b', 'body-c', 'body-d', 'body-e']);
    expect(retried.sort()).toEqual(['body-b#2', 'body-d#2']);
  });

  it('fails the whole batch when batchItemFailures names a message that is not in it, as Lambda does', async () => {
    const { sqs } = await start();
    const counts: string[] = [];
    sqs.createQueue('notify', { visibilityTimeoutSeconds: 5, batchSize: 10 });
    sqs.sendMessage('notify', 'one');
    sqs.sendMessage('notify', 'two');
    let calls = 0;
    sqs.createQueue('notify', {
      consumer: async (event) => {
        counts.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
        calls += 1;
        return calls === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-a-message-id' }] } : undefined;
      },
    });
    await sqs.drain({ timeoutMs: 2000 });
    expect(counts).toEqual(['one#1', 'two#1', 'one#2', 'two#2']);
  });

  it('keeps no more batches in flight than the queue allows', async () => {
    const { sqs } = await start();
    let running = 0;
    let peak = 0;
    sqs.createQueue('archive', {
      maxConcurrency: 2,
      consumer: async () => {
        running += 1;
        peak = Math.max(peak, running);
        await sleep(30);
        running -= 1;
      },
    });
    for (let i = 0; i < 6; i++) sqs.sendMessage('archive', `m${i}`);
    await sqs.drain({ timeoutMs: 2000 });
    expect(peak).toBe(2);
  });

  it('keeps pending messages across a restart when given a data directory', async () => {
    const dataDir = await tempDir();
    const first = await startLocalSqs({ timeScale: TIME_SCALE, pollIntervalMs: 10, dataDir });
    first.createQueue('notify', { visibilityTimeoutSeconds: 5, maxReceiveCount: 4, deadLetterQueue: 'notify-dlq' });
    const ready = first.sendMessage('notify', 'ready', { messageAttributes: { kind: { DataType: 'String', StringValue: 'webhook' } } });
    const delayed = first.sendMessage('notify', 'delayed', { delaySeconds: 10 });
    await first.close();

    const { sqs } = await start({ dataDir });
    expect(sqs.peek('notify').map((m) => m.messageId)).toEqual([ready, delayed]);
    const { seen, consumer } = recorder();
    sqs.createQueue('notify', { consumer });
    await sqs.drain({ timeoutMs: 2000 });

    expect(seen.map((s) => [s.record.messageId, s.record.body])).toEqual([
      [ready, 'ready'],
      [delayed, 'delayed'],
    ]);
    expect(seen[0]!.record.messageAttributes.kind?.stringValue).toBe('webhook');
    expect(sqs.counts('notify')).toEqual({ visible: 0, delayed: 0, inFlight: 0, dlq: 0 });
    expect(sqs.queueArn('notify-dlq')).toBe('arn:aws:sqs:us-east-1:000000000000:notify-dlq');
  });

  it('turns an unknown queue into the SDK QueueDoesNotExist exception', async () => {
    const { sqs, client } = await start();
    sqs.createQueue('archive');

    const send = client.send(
      new SendMessageCommand({ QueueUrl: `${sqs.endpoint}/000000000000/missing`, MessageBody: 'x' }),
    );
    await expect(send).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(client.send(new GetQueueUrlCommand({ QueueName: 'missing' }))).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
      Code: 'AWS.SimpleQueueService.NonExistentQueue',
      $metadata: { httpStatusCode: 400 },
    });
    const found = await client.send(new GetQueueUrlCommand({ QueueName: 'archive' }));
    expect(found.QueueUrl).toBe(sqs.queueUrl('archive'));
    await expect(
      client.send(new SendMessageCommand({ QueueUrl: found.QueueUrl, MessageBody: 'x', DelaySeconds: 901 })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('serves ReceiveMessage, ChangeMessageVisibility, DeleteMessage and GetQueueAttributes for tools', async () => {
    const { sqs, client } = await start();
    const queueUrl = sqs.createQueue('archive-dlq', { visibilityTimeoutSeconds: 30 });
    await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'dead' }));
    const attributes = async () =>
      (await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))).Attributes;
    expect(await attributes()).toMatchObject({ ApproximateNumberOfMessages: '1', ApproximateNumberOfMessagesNotVisible: '0' });

    const received = await client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }),
    );
    expect(received.Messages).toHaveLength(1);
    const message = received.Messages![0]!;
    expect(message).toMatchObject({ Body: 'dead', Attributes: { ApproximateReceiveCount: '1' } });
    expect(await attributes()).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '1' });

    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }));
    const again = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }));
    expect(again.Messages?.[0]?.MessageId).toBe(message.MessageId);

    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: again.Messages![0]!.ReceiptHandle }));
    expect(sqs.counts('archive-dlq')).toEqual({ visible: 0, delayed: 0, inFlight: 0, dlq: 0 });
    const empty = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }));
    expect(empty.Messages ?? []).toEqual([]);
  });

  it('waits for a running consumer call before closing', async () => {
    const sqs = await startLocalSqs({ timeScale: TIME_SCALE, pollIntervalMs: 10 });
    let finished = false;
    sqs.createQueue('archive', {
      consumer: async () => {
        await sleep(100);
        finished = true;
      },
    });
    sqs.sendMessage('archive', 'x');
    while (sqs.counts('archive').inFlight === 0) await sleep(5);
    await sqs.close();
    expect(finished).toBe(true);
  });
});

describe('local schedule', () => {
  it('never overlaps runs, even when asked to run now while one is running', async () => {
    let running = 0;
    let peak = 0;
    let runs = 0;
    const schedule = startSchedule(async () => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(40);
      running -= 1;
      runs += 1;
    }, 10);
    cleanups.push(() => schedule.stop());

    await sleep(25);
    await Promise.all([schedule.runNow(), schedule.runNow(), schedule.runNow()]);
    await sleep(60);
    await schedule.stop();

    expect(peak).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(2);
    const afterStop = runs;
    await sleep(40);
    expect(runs).toBe(afterStop);
  });

  it('logs a throwing run and keeps going', async () => {
    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    let calls = 0;
    const schedule = startSchedule(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('reconcile exploded');
      },
      15,
      (msg, fields) => logged.push({ msg, fields }),
    );
    cleanups.push(() => schedule.stop());

    await schedule.runNow();
    await sleep(60);
    await schedule.stop();

    expect(calls).toBeGreaterThanOrEqual(2);
    expect(logged).toHaveLength(1);
    expect(logged[0]!.fields).toMatchObject({ error: 'reconcile exploded' });
  });

  it('waits for a running call when stopped', async () => {
    let finished = false;
    const schedule = startSchedule(async () => {
      await sleep(50);
      finished = true;
    }, 1000);
    void schedule.runNow();
    await schedule.stop();
    expect(finished).toBe(true);
  });
});
