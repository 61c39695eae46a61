import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { dynamoInOwnProcess, dynamoInProcess } from './embedded-dynamo';
import { ensureLocalTable } from './table-rebuild';

/** The parts of the synthesized stack the local runtime rebuilds, so local and cloud cannot drift. */
export interface StackDefinitions {
  table: CreateTableCommandInput;
  /** The bucket's ObjectCreated notification filter. */
  videoEvents: { prefix: string; suffix: string };
  queues: Record<'archive' | 'notify' | 'poll', { visibilityTimeoutSeconds: number; maxReceiveCount: number }>;
}

type Resource = { Type: string; Properties?: Record<string, any> };

/** Read the table, the notification filter and the queue settings out of a synthesized template. */
export function stackDefinitions(template: { Resources: Record<string, Resource> }): StackDefinitions {
  const resources = Object.entries(template.Resources);
  const only = (type: string, idPrefix = '') => {
    const found = resources.filter(([id, r]) => r.Type === type && id.startsWith(idPrefix) && !id.includes('DeadLetter'));
    if (found.length !== 1) throw new Error(`expected one ${type} ${idPrefix} in the stack, found ${found.length}`);
    return found[0]![1].Properties ?? {};
  };
  const t = only('AWS::DynamoDB::Table');
  const notifications = only('Custom::S3BucketNotifications');
  const rules: { Name: string; Value: string }[] =
    notifications.NotificationConfiguration?.TopicConfigurations?.[0]?.Filter?.Key?.FilterRules ?? [];
  const queue = (prefix: string) => {
    const q = only('AWS::SQS::Queue', prefix);
    return { visibilityTimeoutSeconds: Number(q.VisibilityTimeout ?? 30), maxReceiveCount: Number(q.RedrivePolicy?.maxReceiveCount ?? 5) };
  };
  return {
    table: {
      TableName: 'local',
      AttributeDefinitions: t.AttributeDefinitions,
      KeySchema: t.KeySchema,
      GlobalSecondaryIndexes: t.GlobalSecondaryIndexes,
      BillingMode: t.BillingMode,
    },
    videoEvents: {
      prefix: rules.find((r) => r.Name.toLowerCase() === 'prefix')?.Value ?? '',
      suffix: rules.find((r) => r.Name.toLowerCase() === 'suffix')?.Value ?? '',
    },
    queues: { archive: queue('ArchiveQueue'), notify: queue('NotifyQueue'), poll: queue('PollQueue') },
  };
}

export interface EmbeddedAws {
  dynamodbEndpoint: string;
  s3Endpoint: string;
  /** S3 event notification records (the body SNS would carry), as the local S3 emits them. */
  onS3Event(listener: (record: S3EventRecord) => void): void;
  close(): Promise<void>;
}

export interface S3EventRecord {
  eventName: string;
  eventTime: string;
  s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string } };
  [more: string]: unknown;
}

export const localCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** The parts of s3rver's file store that write object bytes. */
export interface S3rverStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: Readable): Promise<{ size: number; md5: string }>;
  putObject(object: { bucket: string; key: string; metadata: unknown; content: Readable | Buffer }): Promise<{ size: number; md5: string }>;
}

/**
 * s3rver pipes request bodies into files without listening for the file's errors, so a full
 * disk (ENOSPC) is an uncaught exception that ends the whole process. These replacements
 * write the same files, wait until the bytes are on disk, and turn a write failure into a
 * rejected promise: the request answers 500, the one archive attempt fails, and the partial
 * file is removed.
 */
export function writeFailuresAnswer500(store: S3rverStore): void {
  const write = async (path: string, content: Readable | Buffer) => {
    await mkdir(dirname(path), { recursive: true });
    const md5 = createHash('md5');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(Buffer.isBuffer(content) ? Readable.from([content]) : content, count, createWriteStream(path));
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
    return { size, md5: md5.digest('hex') };
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const path = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    const written = await write(path, content);
    await writeFile(`${path}.md5`, written.md5);
    return written;
  };
  store.putObject = async (object) => {
    const written = await write(store.getResourcePath(object.bucket, object.key, 'object'), object.content);
    await store.putMetadata(object.bucket, object.key, object.metadata, written.md5);
    return written;
  };
}

/**
 * DynamoDB (dynalite) and S3 (s3rver), embedded and persisted under `dataDir`, with the
 * stack's table and bucket created in them.
 */
export async function startEmbeddedAws(options: {
  dataDir: string;
  tableName: string;
  bucketName: string;
  definitions: StackDefinitions;
  host?: string;
  /**
   * Where DynamoDB runs: in this process (`npm start`, the tests), or in a process of its own,
   * off the gateway's CPU as DynamoDB is in AWS (the benchmarks).
   */
  dynamodb?: 'in-process' | 'own-process';
  log?: (msg: string, fields?: object) => void;
}): Promise<EmbeddedAws> {
  const host = options.host ?? '127.0.0.1';
  const dynamoDir = join(options.dataDir, 'dynamodb');
  const s3Dir = join(options.dataDir, 's3');
  mkdirSync(dynamoDir, { recursive: true });
  mkdirSync(s3Dir, { recursive: true });

  const dynamo = await (options.dynamodb === 'own-process' ? dynamoInOwnProcess : dynamoInProcess)(dynamoDir, host);
  const dynamodbEndpoint = dynamo.endpoint;

  // Multipart uploads still open belong to archive workers of a process that is gone (the
  // data directory is locked): their parts would only fill the disk.
  rmSync(join(s3Dir, options.bucketName, '._S3rver_uploads'), { recursive: true, force: true });
  const s3rver = new S3rver({ address: host, port: 0, silent: true, directory: s3Dir, allowMismatchedSignatures: true });
  writeFailuresAnswer500(s3rver.store);
  const { port: s3Port } = await s3rver.run();
  const s3Endpoint = `http://${host}:${s3Port}`;

  const region = 'us-east-1';
  const db = new DynamoDBClient({ endpoint: dynamodbEndpoint, region, credentials: localCredentials });
  try {
    await ensureLocalTable(db, options.definitions.table, options.tableName); // kept from the last run, or rebuilt
  } finally {
    db.destroy();
  }
  const s3 = new S3Client({ endpoint: s3Endpoint, region, credentials: localCredentials, forcePathStyle: true });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: options.bucketName }));
  } catch (error) {
    const name = (error as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
  s3.destroy();

  return {
    dynamodbEndpoint,
    s3Endpoint,
    onS3Event(listener) {
      s3rver.on('event', (event: { Records: S3EventRecord[] }) => event.Records.forEach(listener));
    },
    async close() {
      // The SDK keeps connections alive; end them so the servers can close.
      s3rver.httpServer?.closeAllConnections();
      await s3rver.close();
      const unanswered = await dynamo.close();
      if (unanswered > 0) options.log?.('dynamodb closed with operations still running', { operations: unanswered });
    },
  };
}
