import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { expect } from 'vitest';
import { localCredentials } from '../../local/embedded-aws';
import type { SimTaskRecord } from '../../local/simulated-upstream';
import { startHarness, startHookReceiver, type Harness, type HookDelivery, type HookReceiver } from './helpers';

/** What an operator can look at behind the API: the task table and the bucket, through the real SDK. */
export function backstage(h: Harness) {
  const region = 'us-east-1';
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: h.gw.endpoints.dynamodb, region, credentials: localCredentials }),
  );
  const s3 = new S3Client({
    endpoint: h.gw.endpoints.s3,
    region,
    credentials: localCredentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const key = (id: string) => ({ pk: `TASK#${id}` });
  return {
    /** The task's item as stored (every attribute, including the internal ones). */
    async item(id: string): Promise<Record<string, any>> {
      const { Item } = await db.send(new GetCommand({ TableName: h.gw.tableName, Key: key(id), ConsistentRead: true }));
      if (!Item) throw new Error(`no item for task ${id}`);
      return Item;
    },
    /** Any item of the table by its key (circuits: `CIRCUIT#<upstream>`). */
    async raw(itemKey: { pk: string }): Promise<Record<string, any> | undefined> {
      const { Item } = await db.send(new GetCommand({ TableName: h.gw.tableName, Key: itemKey, ConsistentRead: true }));
      return Item;
    },
    /** The task's item once its webhook is `delivered` or `abandoned`. */
    notifyClosed(id: string, status: 'delivered' | 'abandoned', timeoutMs?: number): Promise<Record<string, any>> {
      return eventually(
        `the webhook of ${id} to be ${status}`,
        async () => {
          const i = await this.item(id);
          return i.notify_status === status ? i : undefined;
        },
        timeoutMs,
      );
    },
    /** Overwrite attributes of a task's item, as a crashed worker would have left them. */
    async setAttributes(id: string, values: Record<string, unknown>): Promise<void> {
      const names: Record<string, string> = {};
      const vals: Record<string, unknown> = {};
      const sets = Object.entries(values).map(([k, v], i) => {
        names[`#a${i}`] = k;
        vals[`:a${i}`] = v;
        return `#a${i} = :a${i}`;
      });
      await db.send(
        new UpdateCommand({
          TableName: h.gw.tableName,
          Key: key(id),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: vals,
          ConditionExpression: 'attribute_exists(pk)',
        }),
      );
    },
    /** Keys of the objects in the bucket under `prefix`. */
    async objectKeys(prefix = 'videos/'): Promise<string[]> {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: h.gw.bucketName, Prefix: prefix, ContinuationToken: token }),
        );
        keys.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    /** The object's bytes, streamed into a hash and a byte count. */
    async objectDigest(objectKey: string): Promise<{ sha256: string; bytes: number }> {
      const { createHash } = await import('node:crypto');
      const { Body } = await s3.send(new GetObjectCommand({ Bucket: h.gw.bucketName, Key: objectKey }));
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of Body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      return { sha256: hash.digest('hex'), bytes };
    },
    close() {
      db.destroy();
      s3.destroy();
    },
  };
}
export type Backstage = ReturnType<typeof backstage>;

/** Submit and expect the id back. */
export async function submitOk(h: Harness, body: Record<string, unknown>, headers?: Record<string, string>): Promise<string> {
  const res = await h.submit({ model: 'sora-2', ...body }, headers);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return (JSON.parse(text) as { id: string }).id;
}

/** The task view a client reads. */
export async function taskView(h: Harness, id: string): Promise<any> {
  const res = await h.api(`/v1/videos/generations/${id}`);
  expect(res.status).toBe(200);
  return res.json();
}

/** The simulated upstream's record of a task, found by the upstream id the gateway stored. */
export function upstreamTask(h: Harness, upstreamId: string | undefined): Readonly<SimTaskRecord> {
  const task = upstreamId === undefined ? undefined : h.gw.upstream.tasks.get(upstreamId);
  if (!task) throw new Error(`the upstream has no task ${upstreamId}`);
  return task;
}

/** The upstream's tasks whose prompt is exactly `prompt`. */
export const upstreamTasksFor = (h: Harness, prompt: string) => [...h.gw.upstream.tasks.values()].filter((t) => t.prompt === prompt);

/** Every callback the upstream started has been answered (or has failed). */
export const upstreamCallbacksAnswered = (h: Harness) => {
  const started = [...h.gw.upstream.tasks.values()].reduce((n, t) => n + t.callbacks.length, 0);
  return h.gw.upstream.stats.callbacksSent + h.gw.upstream.stats.callbacksFailed >= started;
};

/** A snapshot of the upstream's counters, to compare against later. */
export const upstreamStats = (h: Harness) => ({ ...h.gw.upstream.stats });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it gives a value; `what` names it in the timeout error. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Run the reconciler (as the schedule would) until `probe` gives a value. */
export function reconcileUntil<T>(h: Harness, what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  return eventually(
    what,
    async () => {
      await h.gw.reconcileNow();
      return probe();
    },
    timeoutMs,
    everyMs,
  );
}

/** The task view once its public status is `status`. */
export const viewWhen = (h: Harness, id: string, status: string) => async () => {
  const view = await taskView(h, id);
  return view.status === status ? view : undefined;
};

/** Wait until nothing is left in the gateway's queues (no job pending, none running). */
export const queuesSettled = (h: Harness, timeoutMs = 10_000) => h.gw.sqs.drain({ timeoutMs });

/** A loopback URL on which nothing listens (the port was free a moment ago). */
export async function deadEndpoint(): Promise<{ url: string; port: number }> {
  const probe = await startHookReceiver();
  await probe.close();
  return { url: probe.url, port: probe.port };
}

/** Check a delivery's Standard Webhooks signature with the key's secret; the verified payload. */
export function verifiedPayload(secret: string, delivery: HookDelivery): any {
  return new Webhook(secret).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  });
}

/** Deliveries whose payload is about task `id`. */
export const deliveriesFor = <D extends { body: string }>(deliveries: readonly D[], id: string): D[] =>
  deliveries.filter((d) => {
    try {
      return (JSON.parse(d.body) as { id?: string }).id === id;
    } catch {
      return false;
    }
  });

/** S3 ObjectCreated events for a task's video. */
export const videoEventsFor = (h: Harness, id: string) => h.gw.s3Events.filter((e) => e.s3.object.key === `videos/${id}.mp4`);

/** A POST to the gateway's upstream callback route, as the upstream (or a forger) would send it. */
export function postCallback(h: Harness, taskId: string, token: string | undefined, body: unknown): Promise<Response> {
  const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
  return fetch(`${h.gw.url}/callbacks/upstream/${encodeURIComponent(taskId)}${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The token the gateway gave the upstream for a task, read from the callback URL the upstream received. */
export function callbackTokenOf(h: Harness, upstreamId: string): string {
  const url = upstreamTask(h, upstreamId).callback_url;
  const token = url ? new URL(url).searchParams.get('token') : null;
  if (!token) throw new Error(`upstream task ${upstreamId} has no callback token`);
  return token;
}

export interface FaultStage {
  h: Harness;
  ops: Backstage;
  /** A webhook receiver that accepts everything. */
  hooks: HookReceiver;
  close(): Promise<void>;
}

/**
 * A local gateway tuned for fault tests: queue delays scaled by 0.01, silent tasks polled after
 * 1 s (unless `env` says otherwise), direct access to its table and bucket, and a webhook receiver;
 * with `demo`, every dialect's simulator and its demo model, as `npm start` has them.
 */
export async function startFaultStage(options: { renderMs: number; env: Record<string, string>; demo?: boolean }): Promise<FaultStage> {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  const h = await startHarness({
    renderMs: options.renderMs,
    demo: options.demo,
    queueTimeScale: 0.01,
    env: { SILENT_AFTER_SECONDS: '1', ...options.env },
  });
  const ops = backstage(h);
  const hooks = await startHookReceiver();
  return {
    h,
    ops,
    hooks,
    async close() {
      h.gw.upstream.setFaults({});
      await hooks.close();
      ops.close();
      await h.close();
    },
  };
}
