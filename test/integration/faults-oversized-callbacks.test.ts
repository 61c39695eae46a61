import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstreamCaps } from '../../lambdas/shared/contracts/upstream';
import {
  callbackTokenOf,
  eventually,
  postCallback,
  submitOk,
  taskView,
  startFaultStage,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness } from './helpers';

/**
 * Issue 14, point 5: upstream strings are bounded before they are stored. A valid callback
 * with a 500,000-character message or a 500 KB video URL moves the task on, the string cut
 * to its cap, instead of an item too large for DynamoDB (a 500, and a task that never moves).
 */

let h: Harness;
let ops: Backstage;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({ renderMs: 200, env: { ARCHIVE_MAX_ATTEMPTS: '1', UPSTREAM_TIMEOUT_MS: '500' } });
  ({ h, ops } = stage);
});

afterAll(() => stage?.close());

/** A submitted task whose own callbacks are lost, and the token the upstream was given for it. */
async function silentTask(prompt: string) {
  const id = await submitOk(h, { prompt: `${prompt} sim:callback=drop` });
  const upstreamId = (await ops.item(id)).upstream_id as string;
  return { id, upstreamId, token: callbackTokenOf(h, upstreamId) };
}

describe('a callback of any size', () => {
  it('with a 500,000-character failure message fails the task with the message cut to its cap', async () => {
    const { id, upstreamId, token } = await silentTask('a comet tail, long message');
    const message = 'the render failed because '.padEnd(500_000, 'x');
    const res = await postCallback(h, id, token, { id: upstreamId, state: 'error', progress: 0, data: null, message });
    expect(res.status, await res.text()).toBe(200);
    const view = await taskView(h, id);
    expect(view).toMatchObject({ status: 'failed', error: { code: 'upstream_failed', message: message.slice(0, upstreamCaps.message) } });
  });

  it('with a 500 KB video URL moves the task on to archiving, the URL cut to its cap', async () => {
    const { id, upstreamId, token } = await silentTask('a salt flat, long URL');
    const url = `${h.gw.upstream.url}/files/${'v'.repeat(500 * 1024)}.mp4`;
    const res = await postCallback(h, id, token, { id: upstreamId, state: 'succeeded', progress: 100, data: { videos: [{ url }] }, message: '' });
    expect(res.status, await res.text()).toBe(200);
    const item = await ops.item(id);
    expect(['archiving', 'failed']).toContain(item.state);
    expect(item.upstream_video_url).toBe(url.slice(0, upstreamCaps.url));
    // The cut URL names no video: the archive says so, and the task ends.
    const failed = await eventually('the archive to give up', async () => {
      const view = await taskView(h, id);
      return view.status === 'failed' ? view : undefined;
    });
    expect(failed.error).toMatchObject({ code: 'archive_failed', message: expect.stringContaining('answered 404') });
  });
});
