import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backstage,
  deadEndpoint,
  deliveriesFor,
  eventually,
  queuesSettled,
  submitOk,
  verifiedPayload,
  type Backstage,
} from './fault-helpers';
import { startHarness, startHookReceiver, type Harness, type HookDelivery, type HookReceiver } from './helpers';

/**
 * Issue 3, point 6: webhooks are delivered at least once, retried with backoff, every
 * attempt recorded on the task; an endpoint that is down for a while still gets the event;
 * a notification lost between "finished" and "queued" is re-sent by reconcile; one that is
 * never accepted is given up after NOTIFY_RETRY_SECONDS.
 *
 * Retry waits are 30 s × 2^n with jitter; queueTimeScale 0.01 makes them 300 ms, 600 ms, ...
 */

const RETRY_SECONDS = 3;
/** Far more than the scaled retry waits a test needs (at most about 2 s). */
const RETRY_WAIT_MS = 10_000;

let h: Harness;
let ops: Backstage;
/** The notify queue's messages are lost (acknowledged unread) while this is set. */
let loseNotifications = false;
/** The task ids of the notify messages lost so far. */
const lost: string[] = [];

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  h = await startHarness({
    renderMs: 200,
    queueTimeScale: 0.01,
    env: { NOTIFY_RETRY_SECONDS: String(RETRY_SECONDS), SILENT_AFTER_SECONDS: '1' },
  });
  ops = backstage(h);
  // The notify queue feeds the same notify Lambda as the gateway wires it, except while a
  // test makes its messages disappear, as a crash right after a task finished would.
  const { handler } = await import('../../lambdas/notify/handler');
  const { lambdaContext } = await import('../../local/http-adapter');
  h.gw.sqs.createQueue('notify', {
    consumer: (event: SQSEvent) => {
      if (!loseNotifications) return handler(event, lambdaContext('notify', 900_000));
      for (const record of event.Records) lost.push((JSON.parse(record.body) as { taskId: string }).taskId);
      return undefined;
    },
  });
});

afterAll(async () => {
  ops?.close();
  await h?.close();
});

const headerOf = (d: HookDelivery, name: string) => String(d.headers[name]);

describe('webhook delivery', () => {
  it.each([
    ['succeeded', 'a quiet pier'],
    ['failed', 'a collapsing bridge sim:fail'],
  ])(
    'a crash between "%s" and "webhook queued" is caught by reconcile, which sends the webhook',
    async (status, prompt) => {
      const hooks = await startHookReceiver();
      try {
        loseNotifications = true;
        const id = await submitOk(h, { prompt, callback_url: hooks.url });
        await h.waitForStatus(id, status);
        // The task's end is told once the usage is settled: wait for that message to be lost.
        await h.waitFor('the notification to be lost', async () => (lost.includes(id) ? true : undefined));
        await queuesSettled(h);
        loseNotifications = false;

        const owed = await ops.item(id);
        expect(owed).toMatchObject({ state: status, notify_status: 'pending', open: expect.stringMatching(/^open#\d+$/) });
        expect(owed.notify_attempts).toBeUndefined();
        expect(h.gw.sqs.peek('notify')).toEqual([]);
        expect(hooks.deliveries).toEqual([]);

        // Nothing is re-sent while the notify queue may still be working on it ...
        await h.gw.reconcileNow();
        await queuesSettled(h);
        expect(hooks.deliveries).toEqual([]);
        // ... but once that grace period is over (fast-forwarded here), reconcile sends it.
        expect(owed.due_at).toBeGreaterThan(Date.now());
        await ops.setAttributes(id, { due_at: Date.now() - 1 });
        await h.gw.reconcileNow();

        const delivery = await h.waitFor('the re-sent webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
        expect(headerOf(delivery, 'webhook-id')).toBe(`${id}.${status}`);
        expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status });
        const item = await ops.notifyClosed(id, 'delivered');
        expect(item.notify_log).toEqual([expect.objectContaining({ attempt: 1, outcome: 'HTTP 200' })]);

        await h.gw.reconcileNow();
        await queuesSettled(h);
        expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
      } finally {
        loseNotifications = false;
        await hooks.close();
      }
    },
  );

  it('a receiver answering 500 twice then 200 gets the event on the 3rd attempt, each attempt recorded, same webhook-id, each signature valid', async () => {
    const hooks = await startHookReceiver({ respond: (n) => (n < 2 ? 500 : 200) });
    try {
      const id = await submitOk(h, { prompt: 'a bell tower at noon', callback_url: hooks.url });
      await h.waitForStatus(id, 'succeeded');
      const item = await ops.notifyClosed(id, 'delivered', RETRY_WAIT_MS);

      const deliveries = deliveriesFor(hooks.deliveries, id);
      expect(deliveries).toHaveLength(3);
      for (const d of deliveries) {
        expect(headerOf(d, 'webhook-id')).toBe(`${id}.succeeded`);
        expect(verifiedPayload(h.gw.webhookSecret, d)).toMatchObject({ id, status: 'succeeded' });
      }
      expect(item.notify_attempts).toBe(3);
      expect(item.notify_log.map((e: { attempt: number; outcome: string }) => [e.attempt, e.outcome])).toEqual([
        [1, 'HTTP 500'],
        [2, 'HTTP 500'],
        [3, 'HTTP 200'],
      ]);
      // Backoff: about 30 s, then 60 s (±25 %), here scaled by 0.01.
      const [a, b, c] = deliveries.map((d) => d.at) as [number, number, number];
      expect(b - a).toBeGreaterThanOrEqual(220);
      expect(c - b).toBeGreaterThanOrEqual(440);
      expect(item.open).toBeUndefined();

      await h.gw.reconcileNow();
      await queuesSettled(h);
      expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(3);
    } finally {
      await hooks.close();
    }
  });

  it('a client endpoint that is down for a while still receives the event once it is back', async () => {
    const dead = await deadEndpoint();
    let hooks: HookReceiver | undefined;
    try {
      const id = await submitOk(h, { prompt: 'a ferry crossing', callback_url: dead.url });
      await h.waitForStatus(id, 'succeeded');
      const down = await eventually(
        'two failed attempts',
        async () => {
          const i = await ops.item(id);
          return (i.notify_log?.length ?? 0) >= 2 ? i : undefined;
        },
        RETRY_WAIT_MS,
      );
      expect(down.notify_status).toBe('pending');
      for (const entry of down.notify_log) expect(entry.outcome).toMatch(/refused the connection/);

      hooks = await startHookReceiver({ port: dead.port });
      const delivered = await ops.notifyClosed(id, 'delivered', RETRY_WAIT_MS);
      const deliveries = deliveriesFor(hooks.deliveries, id);
      expect(deliveries).toHaveLength(1);
      expect(headerOf(deliveries[0]!, 'webhook-id')).toBe(`${id}.succeeded`);
      expect(verifiedPayload(h.gw.webhookSecret, deliveries[0]!)).toMatchObject({ id, status: 'succeeded' });
      expect(delivered.notify_log.at(-1)).toMatchObject({ attempt: delivered.notify_attempts, outcome: 'HTTP 200' });
    } finally {
      await hooks?.close();
    }
  });

  it(`a receiver that never accepts is given up after NOTIFY_RETRY_SECONDS (${RETRY_SECONDS} s): abandoned, every attempt recorded`, async () => {
    const hooks = await startHookReceiver({ respond: () => 500 });
    try {
      const id = await submitOk(h, { prompt: 'a door nobody answers', callback_url: hooks.url });
      await h.waitForStatus(id, 'succeeded');
      const item = await ops.notifyClosed(id, 'abandoned', RETRY_WAIT_MS);
      const log = item.notify_log as { at: number; attempt: number; outcome: string }[];
      expect(log.length).toBeGreaterThanOrEqual(2);
      expect(log.map((e) => e.attempt)).toEqual(log.map((_, i) => i + 1));
      expect(log.every((e) => e.outcome === 'HTTP 500')).toBe(true);
      expect(item.notify_attempts).toBe(log.length);
      expect(log.at(-1)!.at - item.notify_first_at).toBeGreaterThanOrEqual(RETRY_SECONDS * 1000);
      expect(log.at(-2)!.at - item.notify_first_at).toBeLessThan(RETRY_SECONDS * 1000);
      expect(item.open).toBeUndefined();
      expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(log.length);

      // Given up means given up: reconcile does not start over.
      await h.gw.reconcileNow();
      await queuesSettled(h);
      expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(log.length);
    } finally {
      await hooks.close();
    }
  });
});
