import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { DataDirError, displayPath } from './data-dir';

/**
 * The local stand-in for SQS and Lambda's SQS event source: an HTTP server speaking the
 * SQS JSON 1.0 protocol that `@aws-sdk/client-sqs` 3.x uses (so handlers send with the real
 * SDK, pointed here by `endpoint`), plus an in-process poller that hands batches to consumer
 * functions with Lambda's retry semantics: ReportBatchItemFailures, visibility timeout,
 * `maxReceiveCount` redrive to a dead-letter queue.
 */

export type LocalLog = (msg: string, fields?: Record<string, unknown>) => void;

export type SqsConsumer = (
  event: SQSEvent,
) => Promise<SQSBatchResponse | void | undefined> | SQSBatchResponse | void | undefined;

export interface LocalSqsOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Queue contents are kept in `<dataDir>/sqs.json`, so a restart keeps pending messages. */
  dataDir?: string;
  log?: LocalLog;
  region?: string;
  /** Multiplies every SQS duration (visibility timeout, DelaySeconds, long polls): 0.01 makes 30 s into 300 ms. */
  timeScale?: number;
  pollIntervalMs?: number;
  /** Default number of consumer batches in flight per queue. */
  concurrency?: number;
  /** How long close() waits for running consumer calls. */
  closeTimeoutMs?: number;
}

export interface QueueOptions {
  /** Default 30, as in SQS. */
  visibilityTimeoutSeconds?: number;
  /** Receives before a failed message moves to the dead-letter queue; unset means retry forever. */
  maxReceiveCount?: number;
  /** Name of the dead-letter queue; made (without a consumer) if it does not exist. */
  deadLetterQueue?: string;
  /** Records per consumer call; default 1. */
  batchSize?: number;
  /** Batches in flight at once for this queue; default the server's `concurrency`. */
  maxConcurrency?: number;
  /** Lambda's ReportBatchItemFailures; default true. When false, only a throw fails a batch. */
  reportBatchItemFailures?: boolean;
  consumer?: SqsConsumer;
}

export interface QueueCounts {
  /** Ready to be received. */
  visible: number;
  /** Sent with DelaySeconds and not yet visible. */
  delayed: number;
  /** Received and neither deleted nor visible again (includes failed ones waiting out the timeout). */
  inFlight: number;
  /** Messages in this queue's dead-letter queue (0 without one). */
  dlq: number;
}

export interface QueuedMessageView {
  messageId: string;
  body: string;
  receiveCount: number;
  sentTimestamp: number;
  messageAttributes: SQSMessageAttributes;
}

export interface SendOptions {
  delaySeconds?: number;
  /** In the SDK's shape: `{ name: { DataType: 'String', StringValue: 'x' } }`. */
  messageAttributes?: Record<string, WireAttribute>;
}

export interface LocalSqs {
  /** `http://127.0.0.1:<port>`: the `endpoint` for an SQSClient. */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  /** Makes the queue, or updates its settings and consumer; returns its URL. */
  createQueue(name: string, options?: QueueOptions): string;
  queueUrl(name: string): string;
  queueArn(name: string): string;
  /** Sends without HTTP (for tools and tests); returns the message id. */
  sendMessage(name: string, body: string, options?: SendOptions): string;
  /** The queue's messages in send order, without receiving them. */
  peek(name: string): QueuedMessageView[];
  counts(name: string): QueueCounts;
  /** Resolves once every queue with a consumer is empty and no consumer call is running. */
  drain(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops polling, waits (bounded) for running consumer calls, persists, closes the server. */
  close(): Promise<void>;
}

export interface WireAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

interface StoredMessage {
  id: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, WireAttribute>;
  md5OfAttributes?: string;
  traceHeader?: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  deadLetterSourceArn?: string;
}

interface QueueSettings {
  visibilityTimeoutSeconds: number;
  maxReceiveCount?: number;
  deadLetterQueue?: string;
  batchSize: number;
  maxConcurrency: number;
  reportBatchItemFailures: boolean;
}

interface Queue {
  name: string;
  createdAt: number;
  settings: QueueSettings;
  consumer?: SqsConsumer;
  messages: Map<string, StoredMessage>;
  /** Ids of messages handed to a consumer call that has not returned yet. */
  delivering: Set<string>;
  activeBatches: number;
}

const wireAttributeSchema = z.object({ DataType: z.string(), StringValue: z.optional(z.string()), BinaryValue: z.optional(z.string()) });

/** `sqs.json`: the queues and their messages; `delivering` names the messages a consumer call held when it was written. */
const persistedStateSchema = z.object({
  version: z.literal(1),
  queues: z.array(
    z.object({
      name: z.string(),
      createdAt: z.number(),
      settings: z.object({
        visibilityTimeoutSeconds: z.number(),
        maxReceiveCount: z.optional(z.number()),
        deadLetterQueue: z.optional(z.string()),
        batchSize: z.number(),
        maxConcurrency: z.number(),
        reportBatchItemFailures: z.boolean(),
      }),
      messages: z.array(
        z.object({
          id: z.string(),
          body: z.string(),
          md5OfBody: z.string(),
          attributes: z.record(z.string(), wireAttributeSchema),
          md5OfAttributes: z.optional(z.string()),
          traceHeader: z.optional(z.string()),
          sentAt: z.number(),
          visibleAt: z.number(),
          receiveCount: z.number(),
          firstReceiveAt: z.optional(z.number()),
          deadLetterSourceArn: z.optional(z.string()),
        }),
      ),
      delivering: z.optional(z.array(z.string())),
    }),
  ),
});
type PersistedState = z.infer<typeof persistedStateSchema>;

const ACCOUNT_ID = '000000000000';
const SENDER_ID = 'AIDALOCALSQSSENDER000';
const MAX_MESSAGE_BYTES = 1_048_576;
const MAX_DELAY_SECONDS = 900;
const MAX_BATCH_ENTRIES = 10;
const MAX_REQUEST_BYTES = 2 * MAX_MESSAGE_BYTES;
const STATE_FILE = 'sqs.json';
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$/i;
// The characters SQS accepts in a message body (anything else is InvalidMessageContents).
const INVALID_BODY_CHAR = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** An SQS error as the SDK expects it: `__type` names the shape, the header the old query code. */
class SqsError extends Error {
  constructor(
    readonly type: string,
    readonly queryCode: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const errors = {
  queueDoesNotExist: (what: string) =>
    new SqsError('QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', `The specified queue does not exist: ${what}`),
  unsupported: (action: string) =>
    new SqsError('UnsupportedOperation', 'AWS.SimpleQueueService.UnsupportedOperation', `The local SQS does not support ${action || 'this request'}.`),
  invalidParameter: (message: string) => new SqsError('InvalidParameterValue', 'InvalidParameterValue', message),
  missingParameter: (name: string) =>
    new SqsError('MissingParameter', 'MissingParameter', `The request must contain the parameter ${name}.`),
  invalidContents: () =>
    new SqsError('InvalidMessageContents', 'InvalidMessageContents', 'Invalid characters found in the message body.'),
  invalidReceipt: () =>
    new SqsError('ReceiptHandleIsInvalid', 'ReceiptHandleIsInvalid', 'The input receipt handle is invalid.', 404),
  notInflight: () =>
    new SqsError('MessageNotInflight', 'AWS.SimpleQueueService.MessageNotInflight', 'The message is not in flight.'),
  emptyBatch: () =>
    new SqsError('EmptyBatchRequest', 'AWS.SimpleQueueService.EmptyBatchRequest', 'There should be at least one entry in the request.'),
  tooManyEntries: () =>
    new SqsError(
      'TooManyEntriesInBatchRequest',
      'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are ${MAX_BATCH_ENTRIES}.`,
    ),
  idsNotDistinct: () =>
    new SqsError('BatchEntryIdsNotDistinct', 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 'Two or more batch entries have the same Id.'),
  invalidEntryId: () =>
    new SqsError('InvalidBatchEntryId', 'AWS.SimpleQueueService.InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores, at most 80.'),
  batchTooLong: () =>
    new SqsError('BatchRequestTooLong', 'AWS.SimpleQueueService.BatchRequestTooLong', `The batch is longer than ${MAX_MESSAGE_BYTES} bytes.`),
};

const md5Hex = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** SQS's MD5OfMessageAttributes: names sorted, each field length-prefixed (big-endian uint32). */
function md5OfAttributes(attributes: Record<string, WireAttribute>): string | undefined {
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const hash = createHash('md5');
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  for (const name of names) {
    const attribute = attributes[name]!;
    field(Buffer.from(name, 'utf8'));
    field(Buffer.from(attribute.DataType, 'utf8'));
    if (attribute.StringValue !== undefined) {
      hash.update(Buffer.from([1]));
      field(Buffer.from(attribute.StringValue, 'utf8'));
    } else {
      hash.update(Buffer.from([2]));
      field(Buffer.from(attribute.BinaryValue ?? '', 'base64'));
    }
  }
  return hash.digest('hex');
}

function validateAttributes(input: unknown): { attributes: Record<string, WireAttribute>; bytes: number } {
  if (input === undefined || input === null) return { attributes: {}, bytes: 0 };
  if (typeof input !== 'object') throw errors.invalidParameter('MessageAttributes must be a map.');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > 10) throw errors.invalidParameter('Number of message attributes exceeds the limit of 10.');
  const attributes: Record<string, WireAttribute> = {};
  let bytes = 0;
  for (const [name, raw] of entries) {
    if (!ATTRIBUTE_NAME.test(name)) throw errors.invalidParameter(`Message attribute name '${name}' is invalid.`);
    const value = raw as Partial<WireAttribute> | null;
    const dataType = value?.DataType;
    if (typeof dataType !== 'string' || !/^(String|Number|Binary)(\..+)?$/.test(dataType)) {
      throw errors.invalidParameter(`The message attribute '${name}' has an invalid DataType.`);
    }
    if (dataType.startsWith('Binary')) {
      if (typeof value?.BinaryValue !== 'string') {
        throw errors.invalidParameter(`The message attribute '${name}' with type 'Binary' must have a BinaryValue.`);
      }
      attributes[name] = { DataType: dataType, BinaryValue: value.BinaryValue };
      bytes += Buffer.from(value.BinaryValue, 'base64').length;
    } else {
      if (typeof value?.StringValue !== 'string' || value.StringValue === '') {
        throw errors.invalidParameter(`The message attribute '${name}' must contain a non-empty StringValue.`);
      }
      if (dataType.startsWith('Number') && !Number.isFinite(Number(value.StringValue))) {
        throw errors.invalidParameter(`The message attribute '${name}' has an invalid Number value.`);
      }
      attributes[name] = { DataType: dataType, StringValue: value.StringValue };
      bytes += Buffer.byteLength(value.StringValue);
    }
    bytes += Buffer.byteLength(name) + Buffer.byteLength(dataType);
  }
  return { attributes, bytes };
}

function lambdaAttributes(attributes: Record<string, WireAttribute>): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, a] of Object.entries(attributes)) {
    out[name] = {
      ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : { binaryValue: a.BinaryValue }),
      stringListValues: [],
      binaryListValues: [],
      dataType: a.DataType,
    };
  }
  return out;
}

function describeError(error: unknown): Record<string, unknown> {
  return error instanceof Error ? { error: error.message, name: error.name, stack: error.stack } : { error: String(error) };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalSqs> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const log: LocalLog = options.log ?? (() => {});
  const timeScale = options.timeScale ?? 1;
  const pollIntervalMs = options.pollIntervalMs ?? 50;
  const defaultConcurrency = options.concurrency ?? 4;
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const stateFile = options.dataDir ? join(options.dataDir, STATE_FILE) : undefined;
  if (!(timeScale > 0)) throw new Error('timeScale must be positive');

  const queues = new Map<string, Queue>();
  const deliveries = new Set<Promise<void>>();
  let closing = false;
  let closed: Promise<void> | undefined;
  let endpoint = '';
  let port = 0;

  const scaled = (seconds: number) => seconds * 1000 * timeScale;
  const arnOf = (name: string) => `arn:aws:sqs:${region}:${ACCOUNT_ID}:${name}`;
  const urlOf = (name: string) => `${endpoint}/${ACCOUNT_ID}/${name}`;

  function settingsFrom(options: QueueOptions, previous?: QueueSettings): QueueSettings {
    const settings: QueueSettings = {
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? previous?.visibilityTimeoutSeconds ?? 30,
      maxReceiveCount: options.maxReceiveCount ?? previous?.maxReceiveCount,
      deadLetterQueue: options.deadLetterQueue ?? previous?.deadLetterQueue,
      batchSize: options.batchSize ?? previous?.batchSize ?? 1,
      maxConcurrency: options.maxConcurrency ?? previous?.maxConcurrency ?? defaultConcurrency,
      reportBatchItemFailures: options.reportBatchItemFailures ?? previous?.reportBatchItemFailures ?? true,
    };
    if (!(settings.visibilityTimeoutSeconds >= 0 && settings.visibilityTimeoutSeconds <= 43_200)) {
      throw new Error('visibilityTimeoutSeconds must be between 0 and 43200');
    }
    if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1 || settings.batchSize > 10_000) {
      throw new Error('batchSize must be an integer between 1 and 10000');
    }
    if (!Number.isInteger(settings.maxConcurrency) || settings.maxConcurrency < 1) {
      throw new Error('maxConcurrency must be a positive integer');
    }
    if (settings.maxReceiveCount !== undefined && !(Number.isInteger(settings.maxReceiveCount) && settings.maxReceiveCount >= 1)) {
      throw new Error('maxReceiveCount must be a positive integer');
    }
    if (settings.deadLetterQueue !== undefined && settings.maxReceiveCount === undefined) {
      throw new Error('a dead-letter queue needs maxReceiveCount (as in an SQS redrive policy)');
    }
    return settings;
  }

  function addQueue(name: string, settings: QueueSettings, createdAt = Date.now()): Queue {
    const queue: Queue = { name, createdAt, settings, messages: new Map(), delivering: new Set(), activeBatches: 0 };
    queues.set(name, queue);
    return queue;
  }

  function createQueue(name: string, queueOptions: QueueOptions = {}): string {
    if (!QUEUE_NAME.test(name)) throw new Error(`invalid queue name '${name}' (1-80 of A-Z a-z 0-9 - _)`);
    const existing = queues.get(name);
    const settings = settingsFrom(queueOptions, existing?.settings);
    if (settings.deadLetterQueue === name) throw new Error('a queue cannot be its own dead-letter queue');
    if (settings.deadLetterQueue && !queues.has(settings.deadLetterQueue)) createQueue(settings.deadLetterQueue);
    const queue = existing ?? addQueue(name, settings);
    queue.settings = settings;
    if (queueOptions.consumer) queue.consumer = queueOptions.consumer;
    markDirty();
    schedulePump();
    return urlOf(name);
  }

  function queueNamed(name: string): Queue {
    const queue = queues.get(name);
    if (!queue) throw new Error(`no local queue named '${name}'`);
    return queue;
  }

  /** A QueueUrl from a request: any host, as long as the last path segment names a queue. */
  function queueFromUrl(queueUrl: unknown): Queue {
    if (typeof queueUrl !== 'string' || queueUrl === '') throw errors.missingParameter('QueueUrl');
    let name: string | undefined;
    try {
      name = new URL(queueUrl).pathname.split('/').filter(Boolean).pop();
    } catch {
      name = queueUrl.split('/').filter(Boolean).pop();
    }
    const queue = name ? queues.get(name) : undefined;
    if (!queue) throw errors.queueDoesNotExist(queueUrl);
    return queue;
  }

  function enqueue(queue: Queue, body: unknown, delaySeconds: unknown, rawAttributes: unknown, systemAttributes?: unknown): StoredMessage {
    if (typeof body !== 'string') throw errors.missingParameter('MessageBody');
    if (body.length === 0) throw errors.invalidParameter('The message body must be at least one character.');
    if (INVALID_BODY_CHAR.test(body)) throw errors.invalidContents();
    const delay = delaySeconds ?? 0;
    if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > MAX_DELAY_SECONDS) {
      throw errors.invalidParameter(`DelaySeconds must be an integer from 0 to ${MAX_DELAY_SECONDS}.`);
    }
    const { attributes, bytes } = validateAttributes(rawAttributes);
    if (Buffer.byteLength(body) + bytes > MAX_MESSAGE_BYTES) {
      throw errors.invalidParameter(`The message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`);
    }
    const trace = (systemAttributes as Record<string, WireAttribute> | undefined)?.AWSTraceHeader?.StringValue;
    const now = Date.now();
    const message: StoredMessage = {
      id: randomUUID(),
      body,
      md5OfBody: md5Hex(body),
      attributes,
      md5OfAttributes: md5OfAttributes(attributes),
      ...(trace ? { traceHeader: trace } : {}),
      sentAt: now,
      visibleAt: now + scaled(delay),
      receiveCount: 0,
    };
    queue.messages.set(message.id, message);
    markDirty();
    schedulePump();
    return message;
  }

  /** Moves messages that have used up their receives, as SQS does on the next receive attempt. */
  function redriveExhausted(queue: Queue, now: number): void {
    const max = queue.settings.maxReceiveCount;
    if (max === undefined) return;
    for (const message of queue.messages.values()) {
      if (message.receiveCount < max || message.visibleAt > now || queue.delivering.has(message.id)) continue;
      queue.messages.delete(message.id);
      const dlqName = queue.settings.deadLetterQueue;
      if (dlqName && !queues.has(dlqName)) createQueue(dlqName);
      const dlq = dlqName ? queues.get(dlqName) : undefined;
      const fields = { queue: queue.name, messageId: message.id, receiveCount: message.receiveCount };
      if (dlq) {
        dlq.messages.set(message.id, {
          ...message,
          visibleAt: now,
          receiveCount: 0,
          firstReceiveAt: undefined,
          deadLetterSourceArn: arnOf(queue.name),
        });
        log('sqs message moved to dead-letter queue', { ...fields, deadLetterQueue: dlq.name });
      } else {
        log('sqs message dropped after maxReceiveCount: the queue has no dead-letter queue', fields);
      }
      markDirty();
    }
  }

  function receive(queue: Queue, max: number, visibilitySeconds: number): { message: StoredMessage; receiptHandle: string }[] {
    const now = Date.now();
    redriveExhausted(queue, now);
    const received: { message: StoredMessage; receiptHandle: string }[] = [];
    for (const message of queue.messages.values()) {
      if (received.length >= max) break;
      if (message.visibleAt > now || queue.delivering.has(message.id)) continue;
      message.receiveCount += 1;
      message.firstReceiveAt ??= now;
      message.visibleAt = now + scaled(visibilitySeconds);
      const receiptHandle = Buffer.from(`${queue.name}\n${message.id}\n${randomBytes(12).toString('hex')}`).toString('base64url');
      received.push({ message, receiptHandle });
    }
    if (received.length > 0) markDirty();
    return received;
  }

  /** Receipt handles name their message, so an older handle still works (as SQS mostly allows). */
  function messageForReceipt(queue: Queue, receiptHandle: unknown): StoredMessage | undefined {
    if (typeof receiptHandle !== 'string' || receiptHandle === '') throw errors.missingParameter('ReceiptHandle');
    const [name, id] = Buffer.from(receiptHandle, 'base64url').toString('utf8').split('\n');
    if (name !== queue.name || !id) throw errors.invalidReceipt();
    return queue.messages.get(id);
  }

  function toRecord(queue: Queue, message: StoredMessage, receiptHandle: string): SQSRecord {
    return {
      messageId: message.id,
      receiptHandle,
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentAt),
        SenderId: SENDER_ID,
        ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt ?? message.sentAt),
        ...(message.traceHeader ? { AWSTraceHeader: message.traceHeader } : {}),
        ...(message.deadLetterSourceArn ? { DeadLetterQueueSourceArn: message.deadLetterSourceArn } : {}),
      },
      messageAttributes: lambdaAttributes(message.attributes),
      md5OfBody: message.md5OfBody,
      ...(message.md5OfAttributes ? { md5OfMessageAttributes: message.md5OfAttributes } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: arnOf(queue.name),
      awsRegion: region,
    };
  }

  /** Lambda's reading of a batch response: ids it cannot match fail the whole batch. */
  function failedIds(response: unknown, batchIds: string[]): Set<string> {
    const all = new Set(batchIds);
    if (response === undefined || response === null) return new Set();
    if (typeof response !== 'object') return all;
    const failures = (response as Partial<SQSBatchResponse>).batchItemFailures;
    if (failures === undefined || failures === null) return new Set();
    if (!Array.isArray(failures)) return all;
    const failed = new Set<string>();
    for (const failure of failures) {
      const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
      if (typeof id !== 'string' || !all.has(id)) return all;
      failed.add(id);
    }
    return failed;
  }

  async function deliver(queue: Queue, consumer: SqsConsumer, batch: { message: StoredMessage; receiptHandle: string }[]): Promise<void> {
    const ids = batch.map((b) => b.message.id);
    let failed: Set<string>;
    try {
      const response = await consumer({ Records: batch.map((b) => toRecord(queue, b.message, b.receiptHandle)) });
      failed = queue.settings.reportBatchItemFailures ? failedIds(response, ids) : new Set();
      if (failed.size > 0) log('sqs batch item failures', { queue: queue.name, failed: [...failed], batchSize: ids.length });
    } catch (error) {
      failed = new Set(ids);
      log('sqs consumer failed; the batch will be retried after the visibility timeout', {
        queue: queue.name,
        messageIds: ids,
        ...describeError(error),
      });
    }
    for (const id of ids) {
      queue.delivering.delete(id);
      // A failed message keeps the visibility it was received with (or set by ChangeMessageVisibility).
      if (!failed.has(id)) queue.messages.delete(id);
    }
    markDirty();
  }

  function pump(): void {
    if (closing) return;
    const now = Date.now();
    for (const queue of queues.values()) {
      redriveExhausted(queue, now);
      const consumer = queue.consumer;
      if (!consumer) continue;
      while (queue.activeBatches < queue.settings.maxConcurrency) {
        const batch = receive(queue, queue.settings.batchSize, queue.settings.visibilityTimeoutSeconds);
        if (batch.length === 0) break;
        for (const { message } of batch) queue.delivering.add(message.id);
        queue.activeBatches += 1;
        const delivery: Promise<void> = deliver(queue, consumer, batch).finally(() => {
          queue.activeBatches -= 1;
          deliveries.delete(delivery);
          schedulePump();
        });
        deliveries.add(delivery);
      }
    }
  }

  let pumpScheduled = false;
  function schedulePump(): void {
    if (pumpScheduled || closing) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    }).unref();
  }

  let persistTimer: NodeJS.Timeout | undefined;
  function markDirty(): void {
    if (!stateFile || persistTimer || closed) return;
    persistTimer = setTimeout(() => {
      persistTimer = undefined;
      persist();
    }, 100).unref();
  }

  function persist(): void {
    if (!stateFile) return;
    const state: PersistedState = {
      version: 1,
      queues: [...queues.values()].map((q) => ({
        name: q.name,
        createdAt: q.createdAt,
        settings: q.settings,
        messages: [...q.messages.values()],
        delivering: [...q.delivering],
      })),
    };
    try {
      // Written whole and renamed into place, so a crash never leaves half a file.
      const temporary = `${stateFile}.${process.pid}.tmp`;
      writeFileSync(temporary, JSON.stringify(state));
      renameSync(temporary, stateFile);
    } catch (error) {
      log('sqs state could not be saved', { file: stateFile, ...describeError(error) });
    }
  }

  function load(): void {
    if (!options.dataDir || !stateFile) return;
    mkdirSync(options.dataDir, { recursive: true });
    let text: string;
    try {
      text = readFileSync(stateFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const bad = (problem: string) =>
      new DataDirError(
        `${displayPath(stateFile)} is ${problem}. It holds the local queues: delete it to start with empty queues ` +
          '(the reconciler sends lost archive and webhook jobs again, within a lease period of 16 minutes).',
      );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw bad(text.trim() === '' ? 'empty' : 'not valid JSON');
    }
    const parsed = persistedStateSchema.safeParse(json);
    if (!parsed.success) throw bad(`not what the local SQS wrote (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
    const state: PersistedState = parsed.data;
    let pending = 0;
    let resumed = 0;
    const now = Date.now();
    for (const saved of state.queues) {
      const queue = addQueue(saved.name, saved.settings, saved.createdAt);
      const held = new Set(saved.delivering ?? []);
      for (const message of saved.messages) {
        // A consumer call that held it died with the last process: deliver it again now, not
        // after its visibility timeout (90 minutes for the archive queue).
        if (held.has(message.id) && message.visibleAt > now) {
          message.visibleAt = now;
          resumed++;
        }
        queue.messages.set(message.id, message);
      }
      pending += saved.messages.length;
    }
    log('sqs state restored', { file: stateFile, queues: state.queues.length, messages: pending, redeliveredNow: resumed });
  }

  function counts(name: string): QueueCounts {
    const queue = queueNamed(name);
    const now = Date.now();
    const result: QueueCounts = { visible: 0, delayed: 0, inFlight: 0, dlq: 0 };
    for (const message of queue.messages.values()) {
      if (queue.delivering.has(message.id) || (message.receiveCount > 0 && message.visibleAt > now)) result.inFlight += 1;
      else if (message.visibleAt > now) result.delayed += 1;
      else result.visible += 1;
    }
    const dlq = queue.settings.deadLetterQueue ? queues.get(queue.settings.deadLetterQueue) : undefined;
    result.dlq = dlq?.messages.size ?? 0;
    return result;
  }

  function peek(name: string): QueuedMessageView[] {
    return [...queueNamed(name).messages.values()].map((m) => ({
      messageId: m.id,
      body: m.body,
      receiveCount: m.receiveCount,
      sentTimestamp: m.sentAt,
      messageAttributes: lambdaAttributes(m.attributes),
    }));
  }

  async function drain(drainOptions: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = drainOptions.timeoutMs === undefined ? Infinity : Date.now() + drainOptions.timeoutMs;
    for (;;) {
      const busy = [...queues.values()].filter((q) => q.consumer && (q.messages.size > 0 || q.activeBatches > 0));
      if (busy.length === 0 && deliveries.size === 0) return;
      if (closing) throw new Error('local SQS closed while draining');
      if (Date.now() >= deadline) {
        const state = Object.fromEntries(busy.map((q) => [q.name, counts(q.name)]));
        throw new Error(`local SQS did not drain within ${drainOptions.timeoutMs} ms: ${JSON.stringify(state)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    }
  }


  /** The queue and entries of a batch call, checked as SQS checks them before any entry runs. */
  function batchRequest(input: Record<string, unknown>): { queue: Queue; entries: Record<string, unknown>[] } {
    const queue = queueFromUrl(input.QueueUrl);
    const entries = input.Entries;
    if (!Array.isArray(entries) || entries.length === 0) throw errors.emptyBatch();
    if (entries.length > MAX_BATCH_ENTRIES) throw errors.tooManyEntries();
    const ids = entries.map((e: { Id?: unknown } | null) => e?.Id);
    if (ids.some((id) => typeof id !== 'string' || !BATCH_ENTRY_ID.test(id))) throw errors.invalidEntryId();
    if (new Set(ids).size !== ids.length) throw errors.idsNotDistinct();
    return { queue, entries: entries as Record<string, unknown>[] };
  }

  function sendBatch(input: Record<string, unknown>) {
    const { queue, entries } = batchRequest(input);
    const total = entries.reduce((sum, e) => sum + Buffer.byteLength(String(e.MessageBody ?? '')), 0);
    if (total > MAX_MESSAGE_BYTES) throw errors.batchTooLong();
    const Successful: Record<string, string>[] = [];
    const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
    for (const entry of entries) {
      const Id = entry.Id as string;
      try {
        const m = enqueue(queue, entry.MessageBody, entry.DelaySeconds, entry.MessageAttributes, entry.MessageSystemAttributes);
        Successful.push({
          Id,
          MessageId: m.id,
          MD5OfMessageBody: m.md5OfBody,
          ...(m.md5OfAttributes ? { MD5OfMessageAttributes: m.md5OfAttributes } : {}),
        });
      } catch (error) {
        if (!(error instanceof SqsError)) throw error;
        Failed.push({ Id, SenderFault: true, Code: error.type, Message: error.message });
      }
    }
    return { Successful, Failed };
  }

  function selectAttributes(message: StoredMessage, requested: unknown): Record<string, WireAttribute> | undefined {
    if (!Array.isArray(requested) || requested.length === 0) return undefined;
    const wanted = requested.map(String);
    const all = wanted.includes('All') || wanted.includes('.*');
    const chosen = Object.entries(message.attributes).filter(
      ([name]) => all || wanted.some((w) => (w.endsWith('.*') ? name.startsWith(w.slice(0, -1)) : w === name)),
    );
    return chosen.length > 0 ? Object.fromEntries(chosen) : undefined;
  }

  function systemAttributes(message: StoredMessage, requested: unknown): Record<string, string> | undefined {
    if (!Array.isArray(requested) || requested.length === 0) return undefined;
    const available: Record<string, string> = {
      ApproximateReceiveCount: String(message.receiveCount),
      ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt ?? message.sentAt),
      SentTimestamp: String(message.sentAt),
      SenderId: SENDER_ID,
      ...(message.traceHeader ? { AWSTraceHeader: message.traceHeader } : {}),
      ...(message.deadLetterSourceArn ? { DeadLetterQueueSourceArn: message.deadLetterSourceArn } : {}),
    };
    const wanted = requested.map(String);
    if (wanted.includes('All')) return available;
    return Object.fromEntries(Object.entries(available).filter(([name]) => wanted.includes(name)));
  }

  async function receiveMessage(input: Record<string, unknown>) {
    const queue = queueFromUrl(input.QueueUrl);
    const max = input.MaxNumberOfMessages ?? 1;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10) {
      throw errors.invalidParameter('MaxNumberOfMessages must be an integer from 1 to 10.');
    }
    const visibility = input.VisibilityTimeout ?? queue.settings.visibilityTimeoutSeconds;
    if (typeof visibility !== 'number' || visibility < 0 || visibility > 43_200) {
      throw errors.invalidParameter('VisibilityTimeout must be from 0 to 43200.');
    }
    const wait = input.WaitTimeSeconds ?? 0;
    if (typeof wait !== 'number' || wait < 0 || wait > 20) throw errors.invalidParameter('WaitTimeSeconds must be from 0 to 20.');
    const deadline = Date.now() + scaled(wait);
    let received = receive(queue, max, visibility);
    while (received.length === 0 && !closing && Date.now() < deadline) {
      await sleep(Math.min(pollIntervalMs, deadline - Date.now()));
      received = receive(queue, max, visibility);
    }
    const requestedSystem = [
      ...((input.AttributeNames as unknown[] | undefined) ?? []),
      ...((input.MessageSystemAttributeNames as unknown[] | undefined) ?? []),
    ];
    return {
      Messages: received.map(({ message, receiptHandle }) => {
        const attributes = selectAttributes(message, input.MessageAttributeNames);
        const system = systemAttributes(message, requestedSystem);
        return {
          MessageId: message.id,
          ReceiptHandle: receiptHandle,
          MD5OfBody: message.md5OfBody,
          Body: message.body,
          ...(system ? { Attributes: system } : {}),
          ...(attributes ? { MessageAttributes: attributes, MD5OfMessageAttributes: md5OfAttributes(attributes) } : {}),
        };
      }),
    };
  }

  function changeVisibility(queue: Queue, receiptHandle: unknown, seconds: unknown): void {
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > 43_200) {
      throw errors.invalidParameter('VisibilityTimeout must be an integer from 0 to 43200.');
    }
    const message = messageForReceipt(queue, receiptHandle);
    const now = Date.now();
    if (!message || message.receiveCount === 0 || (message.visibleAt <= now && !queue.delivering.has(message.id))) {
      throw errors.notInflight();
    }
    message.visibleAt = now + scaled(seconds);
    markDirty();
    schedulePump();
  }

  function deleteMessage(queue: Queue, receiptHandle: unknown): void {
    const message = messageForReceipt(queue, receiptHandle);
    if (message && queue.messages.delete(message.id)) markDirty();
  }

  /** Runs one entry of a batch call, turning its SQS error into a Failed entry. */
  function batchEntries(input: Record<string, unknown>, apply: (queue: Queue, entry: Record<string, unknown>) => void) {
    const { queue, entries } = batchRequest(input);
    const Successful: { Id: string }[] = [];
    const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
    for (const entry of entries) {
      const Id = entry.Id as string;
      try {
        apply(queue, entry);
        Successful.push({ Id });
      } catch (error) {
        if (!(error instanceof SqsError)) throw error;
        Failed.push({ Id, SenderFault: true, Code: error.type, Message: error.message });
      }
    }
    return { Successful, Failed };
  }

  function queueAttributes(input: Record<string, unknown>) {
    const queue = queueFromUrl(input.QueueUrl);
    const c = counts(queue.name);
    const s = queue.settings;
    const available: Record<string, string> = {
      QueueArn: arnOf(queue.name),
      ApproximateNumberOfMessages: String(c.visible),
      ApproximateNumberOfMessagesNotVisible: String(c.inFlight),
      ApproximateNumberOfMessagesDelayed: String(c.delayed),
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      LastModifiedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      VisibilityTimeout: String(s.visibilityTimeoutSeconds),
      DelaySeconds: '0',
      MaximumMessageSize: String(MAX_MESSAGE_BYTES),
      MessageRetentionPeriod: '345600',
      ReceiveMessageWaitTimeSeconds: '0',
      ...(s.maxReceiveCount !== undefined && s.deadLetterQueue
        ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arnOf(s.deadLetterQueue), maxReceiveCount: s.maxReceiveCount }) }
        : {}),
    };
    const wanted = Array.isArray(input.AttributeNames) ? input.AttributeNames.map(String) : [];
    const Attributes = wanted.includes('All')
      ? available
      : Object.fromEntries(Object.entries(available).filter(([name]) => wanted.includes(name)));
    return Object.keys(Attributes).length > 0 ? { Attributes } : {};
  }

  const actions: Record<string, (input: Record<string, unknown>) => unknown> = {
    SendMessage: (input) => {
      const m = enqueue(queueFromUrl(input.QueueUrl), input.MessageBody, input.DelaySeconds, input.MessageAttributes, input.MessageSystemAttributes);
      return { MessageId: m.id, MD5OfMessageBody: m.md5OfBody, ...(m.md5OfAttributes ? { MD5OfMessageAttributes: m.md5OfAttributes } : {}) };
    },
    SendMessageBatch: sendBatch,
    GetQueueUrl: (input) => {
      const name = input.QueueName;
      if (typeof name !== 'string' || name === '') throw errors.missingParameter('QueueName');
      if (!queues.has(name)) throw errors.queueDoesNotExist(name);
      return { QueueUrl: urlOf(name) };
    },
    ListQueues: (input) => {
      const prefix = typeof input.QueueNamePrefix === 'string' ? input.QueueNamePrefix : '';
      return { QueueUrls: [...queues.keys()].filter((n) => n.startsWith(prefix)).map(urlOf) };
    },
    ReceiveMessage: receiveMessage,
    DeleteMessage: (input) => {
      deleteMessage(queueFromUrl(input.QueueUrl), input.ReceiptHandle);
      return {};
    },
    DeleteMessageBatch: (input) => batchEntries(input, (queue, entry) => deleteMessage(queue, entry.ReceiptHandle)),
    ChangeMessageVisibility: (input) => {
      changeVisibility(queueFromUrl(input.QueueUrl), input.ReceiptHandle, input.VisibilityTimeout);
      return {};
    },
    ChangeMessageVisibilityBatch: (input) =>
      batchEntries(input, (queue, entry) => changeVisibility(queue, entry.ReceiptHandle, entry.VisibilityTimeout)),
    GetQueueAttributes: queueAttributes,
    PurgeQueue: (input) => {
      const queue = queueFromUrl(input.QueueUrl);
      for (const id of [...queue.messages.keys()]) if (!queue.delivering.has(id)) queue.messages.delete(id);
      markDirty();
      return {};
    },
  };

  function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(Buffer.byteLength(text)),
      'x-amzn-requestid': randomUUID(),
      ...headers,
    });
    res.end(text);
  }

  function replyError(res: ServerResponse, error: SqsError): void {
    // The SDK reads `__type` for the exception class; the header carries the code that
    // SQS's older query protocol used, which the SDK exposes as `error.Code`.
    reply(
      res,
      error.status,
      { __type: `com.amazonaws.sqs#${error.type}`, message: error.message },
      { 'x-amzn-query-error': `${error.queryCode};Sender` },
    );
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) throw errors.invalidParameter('The request is too large.');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const target = req.headers['x-amz-target'];
      const action = typeof target === 'string' && target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
      const text = await readBody(req);
      if (req.method !== 'POST' || !action) throw errors.unsupported(`${req.method} ${req.url} without an AmazonSQS X-Amz-Target`);
      const run = actions[action];
      if (!run) throw errors.unsupported(action);
      let input: unknown;
      try {
        input = text.trim() === '' ? {} : JSON.parse(text);
      } catch {
        throw errors.invalidParameter('The request body is not JSON.');
      }
      if (typeof input !== 'object' || input === null) throw errors.invalidParameter('The request body must be a JSON object.');
      reply(res, 200, await run(input as Record<string, unknown>));
    } catch (error) {
      if (error instanceof SqsError) return replyError(res, error);
      log('sqs request failed', { url: req.url, ...describeError(error) });
      reply(res, 500, { __type: 'com.amazonaws.sqs#InternalError', message: 'internal error in the local SQS' }, {
        'x-amzn-query-error': 'InternalError;Receiver',
      });
    }
  }

  load();
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  endpoint = `http://${urlHost}:${port}`;
  const poller = setInterval(pump, pollIntervalMs).unref();
  schedulePump();

  async function close(): Promise<void> {
    closing = true;
    clearInterval(poller);
    const running = [...deliveries];
    if (running.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled(running).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) log('sqs closed with consumer calls still running; their messages are redelivered after a restart', { batches: deliveries.size });
    }
    // Consumers may still be sending while they finish, so the server closes only now.
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    clearTimeout(persistTimer);
    persistTimer = undefined;
    persist();
  }

  return {
    get endpoint() {
      return endpoint;
    },
    get port() {
      return port;
    },
    region,
    createQueue,
    queueUrl: (name) => urlOf(queueNamed(name).name),
    queueArn: (name) => arnOf(queueNamed(name).name),
    sendMessage: (name, body, send = {}) => {
      try {
        return enqueue(queueNamed(name), body, send.delaySeconds, send.messageAttributes).id;
      } catch (error) {
        if (error instanceof SqsError) throw new Error(`${error.type}: ${error.message}`);
        throw error;
      }
    },
    peek,
    counts,
    drain,
    close: () => (closed ??= close()),
  };
}
