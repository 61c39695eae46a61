import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoSha256 } from '../../local/mp4';
import type { SimFaults } from '../../local/simulated-upstream';
import {
  deliveriesFor,
  eventually,
  queuesSettled,
  submitOk,
  upstreamStats,
  upstreamTask,
  verifiedPayload,
  videoEventsFor,
  startFaultStage,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness, HookReceiver } from './helpers';

/**
 * Issue 3, point 5: a download that breaks off, is not a video, is too big, is gone or
 * stalls leaves no object and no `succeeded`; it is retried, then fails with
 * `archive_failed` saying why, and the upstream is never asked to render again.
 */

const MAX_ATTEMPTS = 3;
const MAX_BYTES = 1024 * 1024;
const TIMEOUT_MS = 500;

let h: Harness;
let ops: Backstage;
let hooks: HookReceiver;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({
    renderMs: 200,
    env: {
      ARCHIVE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      MAX_VIDEO_BYTES: String(MAX_BYTES),
      // Also the limit on a silent video download.
      UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
    },
  });
  ({ h, ops, hooks } = stage);
});

afterAll(() => stage?.close());

/** [fault, prompt tokens, what the reason says, whether the upstream counts the download as started] */
const faults: [string, string, RegExp, boolean][] = [
  ['a truncated download', 'sim:truncated', /the download (broke off after \d+ bytes|ended after \d+ of \d+ bytes)/, true],
  ['a page that is not a video', 'sim:not-video', /the upstream sent text\/html, not a video/, false],
  ['a video over the size cap', 'sim:oversized sim:bytes=2M', new RegExp(`the video is ${2 * 1024 * 1024} bytes, over the ${MAX_BYTES}-byte cap`), true],
  ['a video with no Content-Length that grows past the cap', 'sim:video=chunked sim:bytes=2M', new RegExp(`the video is over the ${MAX_BYTES}-byte cap`), true],
  ['an MP4 with no movie header', 'sim:video=no-moov', /the video has no movie header \(moov box\)/, true],
  ['a video URL that answers 404', 'sim:video=gone', /the upstream video URL answered 404/, false],
  // Bigger than the 64 KiB the simulated host sends before it stalls (a smaller video would arrive whole).
  ['a download that stalls', 'sim:video=stall sim:bytes=200K', new RegExp(`broke off after \\d+ bytes: .*sent no response data for ${TIMEOUT_MS} ms`), true],
];

describe('downloads that go wrong', () => {
  it.each(faults)(
    '%s leaves no object and no success, is retried, then fails with archive_failed saying why',
    async (_what, tokens, reason, counted) => {
      const before = upstreamStats(h);
      const id = await submitOk(h, { prompt: `a red balloon ${tokens}`, callback_url: hooks.url });
      const failed = await h.waitForStatus(id, 'failed', 15_000);

      expect(failed.error.code).toBe('archive_failed');
      expect(failed.error.message).toMatch(new RegExp(`^the video could not be archived after ${MAX_ATTEMPTS} attempts: `));
      expect(failed.error.message).toMatch(reason);
      expect(failed).toMatchObject({ status: 'failed', state: 'error', video: null, data: { videos: [] } });

      const item = await ops.item(id);
      expect(item).toMatchObject({ state: 'failed', archive_attempts: MAX_ATTEMPTS, error_code: 'archive_failed' });
      expect(item.video_key).toBeUndefined();
      expect(await ops.objectKeys(`videos/${id}`)).toEqual([]);
      expect(videoEventsFor(h, id)).toEqual([]);

      const stats = h.gw.upstream.stats;
      if (counted) expect(stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(MAX_ATTEMPTS);
      // Rendered once; a failed download never asks for another render.
      expect(stats.submitsReceived - before.submitsReceived).toBe(1);
      expect(stats.submitsAccepted - before.submitsAccepted).toBe(1);

      const delivery = await h.waitFor('the failure webhook', async () => deliveriesFor(hooks.deliveries, id)[0]);
      expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({
        id,
        status: 'failed',
        error: { code: 'archive_failed', message: failed.error.message },
      });
      await queuesSettled(h);
      expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
      expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
    },
    20_000,
  );

  it('a download that breaks off once is retried, and the second attempt archives the video', async () => {
    const before = upstreamStats(h);
    const id = await submitOk(h, { prompt: 'a lantern on a lake sim:truncated' });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    // The file host recovers as soon as the first (truncated) download has begun.
    await eventually('the first download', () => (h.gw.upstream.stats.videoDownloadsStarted > before.videoDownloadsStarted ? true : undefined), 10_000, 2);
    (sim.faults as SimFaults).video = 'ok';

    const done = await h.waitForStatus(id, 'succeeded');
    expect(done.video).toMatchObject({ bytes: sim.video.bytes, sha256: videoSha256({ taskId: sim.id, ...sim.video }) });
    expect(await ops.item(id)).toMatchObject({ archive_attempts: 2 });
    expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual({ sha256: done.video.sha256, bytes: sim.video.bytes });
    expect(videoEventsFor(h, id)).toHaveLength(1);
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(2);
    expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
  });

  it('a video sent without Content-Length (chunked) still archives with the right sha256', async () => {
    const id = await submitOk(h, { prompt: 'a folding map sim:video=chunked sim:bytes=700K' });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    const done = await h.waitForStatus(id, 'succeeded');
    const sha256 = videoSha256({ taskId: sim.id, ...sim.video });
    expect(done.video).toMatchObject({ bytes: 700 * 1024, sha256, content_type: 'video/mp4' });
    expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual({ sha256, bytes: 700 * 1024 });
    expect(videoEventsFor(h, id)).toHaveLength(1);
  });

  it('a video exactly at the size cap is accepted', async () => {
    const id = await submitOk(h, { prompt: 'a brimming cup sim:bytes=1M' });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    const done = await h.waitForStatus(id, 'succeeded');
    expect(done.video).toMatchObject({ bytes: MAX_BYTES, sha256: videoSha256({ taskId: sim.id, ...sim.video }) });
  });
});
