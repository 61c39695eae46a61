import { afterAll, beforeAll, expect, it } from 'vitest';
import { backstage, eventually, startHookReceiver, submitOk, sleep } from './fault-helpers';
import { startHarness, type Harness } from './helpers';
let h: Harness;
beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  h = await startHarness({ renderMs: 200, queueTimeScale: 0.01, env: { NOTIFY_RETRY_SECONDS: '200' } });
});
afterAll(() => h?.close());
it('diag', async () => {
  const ops = backstage(h);
  const hooks = await startHookReceiver({ respond: (n) => (n < 2 ? 500 : 200) });
  const id = await submitOk(h, { prompt: 'diag', callback_url: hooks.url });
  await h.waitForStatus(id, 'succeeded');
  await sleep(1500);
  const t = Date.now();
  console.log('deliveries', hooks.deliveries.length, 'queue', JSON.stringify(h.gw.sqs.peek('notify').map((m) => ({ body: m.body, rc: m.receiveCount }))), 'now', t);
  console.log('item', JSON.stringify((await ops.item(id)).notify_log));
  const item = await eventually('delivered', async () => { const i = await ops.item(id); return i.notify_status === 'delivered' ? i : undefined; }, 150_000);
  console.log('log', JSON.stringify(item.notify_log), 'deliveries at', hooks.deliveries.map((d) => d.at - hooks.deliveries[0]!.at));
}, 170_000);
