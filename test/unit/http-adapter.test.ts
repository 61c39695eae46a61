import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { startHttpAdapter } from '../../local/http-adapter';

/** A submit Lambda that answers only when the test says so. */
function heldSubmit() {
  let entered!: () => void;
  const running = new Promise<void>((resolve) => (entered = resolve));
  let answer!: (result: APIGatewayProxyStructuredResultV2) => void;
  const result = new Promise<APIGatewayProxyStructuredResultV2>((resolve) => (answer = resolve));
  return {
    running,
    answer,
    lambda: async () => {
      entered();
      return result;
    },
  };
}

const submit = (url: string) =>
  fetch(`${url}/v1/videos/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"a lake"}' });

describe('stopping the local API', () => {
  it('answers the requests being handled before it closes, and turns new ones away with 503', async () => {
    const held = heldSubmit();
    const api = await startHttpAdapter({ lambdas: { submit: held.lambda } });
    const first = submit(api.url);
    await held.running;

    let closed = false;
    const closing = api.close().then(() => (closed = true));
    const late = await submit(api.url);
    expect(late.status).toBe(503);
    expect(await late.json()).toEqual({ message: 'Service Unavailable' });
    expect(closed).toBe(false);

    held.answer({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"id":"task_1"}' });
    const res = await first;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 'task_1' });
    await closing;
    await expect(submit(api.url)).rejects.toThrow();
  });

  it('waits for a request that never ends only as long as it was told, then closes and says so', async () => {
    const held = heldSubmit();
    const logged: { msg: string; fields?: object }[] = [];
    const api = await startHttpAdapter({ lambdas: { submit: held.lambda }, closeTimeoutMs: 300, log: (msg, fields) => logged.push({ msg, fields }) });
    const first = submit(api.url);
    await held.running;

    const startedAt = Date.now();
    await api.close();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    await expect(first).rejects.toThrow();
    expect(logged).toContainEqual({ msg: 'api closed with requests still being handled', fields: { requests: 1 } });
  });
});
