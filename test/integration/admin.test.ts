import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId, hashKey } from '../../lambdas/shared/api-keys';
import { startHarness, type Harness } from './helpers';

/** An operator's key sees across keys under /admin; no other key learns /admin exists. */
let h: Harness;
let admin: string;
let other: string;

beforeAll(async () => {
  h = await startHarness({ renderMs: 200 });
  admin = await h.gw.createKey('ops', { admin: true });
  other = await h.gw.createKey('second client');
});
afterAll(() => h.close());

const ok = async (r: Promise<Response>) => {
  const response = await r;
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as any;
};

describe('admin API', () => {
  it('lists every key’s tasks, newest first, with owner, upstream and route attempts', async () => {
    const mine = (await ok(h.submit({ model: 'sora-2', prompt: 'first client task' }))).id;
    const theirs = (await ok(h.api('/v1/videos/generations', {
      method: 'POST',
      key: other,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sora-2', prompt: 'second client task' }),
    }))).id;
    await h.waitForStatus(mine, 'succeeded');
    const list = await ok(h.api('/admin/tasks?limit=10', { key: admin }));
    expect(list.data.map((t: { id: string }) => t.id).slice(0, 2)).toEqual([theirs, mine]);
    const task = list.data.find((t: { id: string }) => t.id === mine);
    expect(task).toMatchObject({
      key_id: keyId(hashKey(h.gw.apiKey)),
      upstream: 'simulated',
      upstream_model: 'sora-2',
      attempts: [expect.objectContaining({ upstream: 'simulated', outcome: 'submitted' })],
    });
    const one = await ok(h.api(`/admin/tasks/${theirs}`, { key: admin }));
    expect(one).toMatchObject({ id: theirs, key_id: keyId(hashKey(other)), prompt: 'second client task' });
    // Pages with the cursor, like the client list.
    const first = await ok(h.api('/admin/tasks?limit=1', { key: admin }));
    expect(first).toMatchObject({ has_more: true, next_cursor: theirs });
    const second = await ok(h.api(`/admin/tasks?limit=1&after=${first.next_cursor}`, { key: admin }));
    expect(second.data[0].id).toBe(mine);
  });

  it('shows each upstream’s circuit and recent error rate', async () => {
    const health = await ok(h.api('/admin/upstreams', { key: admin }));
    expect(health.data).toEqual([
      expect.objectContaining({ name: 'simulated', circuit: 'closed', consecutive_failures: 0, recent_error_rate: 0 }),
    ]);
    expect(health.data[0].recent_attempts).toBeGreaterThanOrEqual(2);
  });

  it('shows the local metrics: submits, successes and time to video by model', async () => {
    const { data } = await ok(h.api('/admin/metrics', { key: admin }));
    const figure = (name: string, dimensions: object = {}) => data.find((f: any) => f.name === name && JSON.stringify(f.dimensions) === JSON.stringify(dimensions));
    expect(figure('TasksSubmitted')?.count).toBeGreaterThanOrEqual(2);
    expect(figure('TasksSucceeded', { model: 'sora-2' })?.count).toBeGreaterThanOrEqual(1);
    expect(figure('TimeToVideo', { model: 'sora-2' })).toMatchObject({ unit: 'Seconds' });
    expect(figure('UpstreamSubmitLatency', { upstream: 'simulated' })).toMatchObject({ unit: 'Milliseconds' });
    expect(figure('ArchiveBytes')?.sum).toBeGreaterThan(0);
  });

  it('answers any other key with the same 404 as a path that does not exist', async () => {
    for (const key of [h.gw.apiKey, other]) {
      for (const path of ['/admin/tasks', '/admin/upstreams', '/admin/metrics']) {
        const response = await h.api(path, { key });
        expect(response.status).toBe(404);
        expect(await response.json()).toEqual({ error: expect.objectContaining({ code: 'not_found', message: `no route for GET ${path}` }) });
      }
    }
    expect((await h.api('/admin/tasks', { key: null })).status).toBe(401);
  });
});
