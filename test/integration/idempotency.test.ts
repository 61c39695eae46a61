import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  h.gw.upstream.setFaults({ render: 'stall' });
});
afterAll(() => h?.close());

const body = (prompt: string) => ({ model: 'sora-2', prompt, duration: 15 });
const accepted = () => h.gw.upstream.stats.submitsAccepted;

describe('Idempotency-Key', () => {
  it('a retried submit returns the same id and makes no second upstream call', async () => {
    const before = accepted();
    const first = await h.submit(body('retry me'), { 'idempotency-key': 'order-1' });
    const second = await h.submit(body('retry me'), { 'idempotency-key': 'order-1' });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    const [a, b] = [(await first.json()) as any, (await second.json()) as any];
    expect(b.id).toBe(a.id);
    expect(accepted()).toBe(before + 1);
  });

  it('the same key with a different body is 409 and writes nothing', async () => {
    await h.submit(body('first body'), { 'idempotency-key': 'order-2' });
    const before = accepted();
    const res = await h.submit(body('another body'), { 'idempotency-key': 'order-2' });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({
      error: { code: 'idempotency_conflict', type: 'invalid_request_error', message: 'this Idempotency-Key was used with a different request body' },
    });
    expect(accepted()).toBe(before);
  });

  it('keys are scoped to the API key: another tenant may use the same key freely', async () => {
    const mine = (await (await h.submit(body('scoped'), { 'idempotency-key': 'order-3' })).json()) as any;
    const other = await h.gw.createKey('tenant b');
    const res = await h.api('/v1/videos/generations', {
      key: other,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-3' },
      body: JSON.stringify(body('scoped')),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).id).not.toBe(mine.id);
  });

  it('concurrent retries with one key make one task', async () => {
    const before = accepted();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => h.submit(body('burst'), { 'idempotency-key': 'order-4' }).then((r) => r.json() as any)),
    );
    expect(new Set(answers.map((a) => a.id)).size).toBe(1);
    expect(accepted()).toBe(before + 1);
  });

  it('without the header, the same request twice makes two tasks', async () => {
    const a = (await (await h.submit(body('twice'))).json()) as any;
    const b = (await (await h.submit(body('twice'))).json()) as any;
    expect(a.id).not.toBe(b.id);
  });

  it('an Idempotency-Key over 255 characters is refused', async () => {
    const res = await h.submit(body('long key'), { 'idempotency-key': 'k'.repeat(256) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { code: 'invalid_request', type: 'invalid_request_error', message: 'Idempotency-Key must be 1 to 255 characters', param: 'Idempotency-Key' },
    });
  });
});
