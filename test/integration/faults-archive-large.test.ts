import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoSha256 } from '../../local/mp4';
import {
  eventually,
  queuesSettled,
  startFaultStage,
  submitOk,
  upstreamStats,
  upstreamTask,
  videoEventsFor,
  type Backstage,
  type FaultStage,
} from './fault-helpers';
import type { Harness } from './helpers';

/**
 * Issue 3, point 5, with videos big enough for a multipart upload: a large video archives
 * whole and exact; one that breaks off after several parts were uploaded leaves no object.
 */

const MiB = 1024 * 1024;
const MAX_ATTEMPTS = 2;
/** The gateway's multipart part size (`UPLOAD_PART_BYTES` in lambdas/shared/videos.ts), not imported so that the gateway's logger is made after the environment is set. */
const PART_BYTES = 8 * MiB;

let h: Harness;
let ops: Backstage;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({ renderMs: 200, env: { ARCHIVE_MAX_ATTEMPTS: String(MAX_ATTEMPTS) } });
  ({ h, ops } = stage);
});

afterAll(() => stage?.close());

describe('large videos', () => {
  it('a 64 MiB video archives in parts with the right byte count and sha256, announced by one S3 event', async () => {
    const bytes = 64 * MiB;
    const id = await submitOk(h, { prompt: 'a long pan over mountains sim:bytes=64M' });
    const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
    const done = await h.waitForStatus(id, 'succeeded', 40_000);
    const sha256 = videoSha256({ taskId: sim.id, ...sim.video });
    expect(done.video).toMatchObject({ bytes, sha256, content_type: 'video/mp4' });
    expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual({ sha256, bytes });
    const events = videoEventsFor(h, id);
    expect(events).toHaveLength(1);
    expect(events[0]!.s3.object.size).toBe(bytes);
  }, 50_000);

  it('a download that breaks off after several parts were uploaded leaves no object, and fails with archive_failed after the last retry', async () => {
    const bytes = 40 * MiB;
    expect(bytes / 2).toBeGreaterThan(2 * PART_BYTES);
    const before = upstreamStats(h);
    const id = await submitOk(h, { prompt: 'a long dolly shot sim:truncated sim:bytes=40M' });
    const failed = await h.waitForStatus(id, 'failed', 40_000);
    expect(failed.error.code).toBe('archive_failed');
    expect(failed.error.message).toMatch(
      new RegExp(`^the video could not be archived after ${MAX_ATTEMPTS} attempts: the download (broke off after \\d+ bytes|ended after \\d+ of ${bytes} bytes)`),
    );
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([]);
    expect(videoEventsFor(h, id)).toEqual([]);
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(MAX_ATTEMPTS);
    expect(h.gw.upstream.stats.submitsAccepted - before.submitsAccepted).toBe(1);
  }, 50_000);

  it('an archive job delivered again while the first is at work, and once more after, stores and announces the video once', async () => {
    const before = upstreamStats(h);
    const id = await submitOk(h, { prompt: 'a slow tracking shot sim:bytes=24M' });
    // SQS delivers at least once: the same job arrives twice while the first worker holds the task ...
    await eventually('the first worker to claim the task', async () => {
      const item = await ops.item(id);
      return item.state === 'archiving' && item.archive_lease_until ? true : undefined;
    });
    const job = JSON.stringify({ taskId: id, attempt: 1 });
    h.gw.sqs.sendMessage('archive', job);
    h.gw.sqs.sendMessage('archive', job);
    const done = await h.waitForStatus(id, 'succeeded', 40_000);
    await queuesSettled(h, 30_000);
    const after = await ops.item(id);
    // ... and once more after the task has succeeded.
    h.gw.sqs.sendMessage('archive', job);
    await queuesSettled(h, 30_000);

    expect(await ops.item(id)).toEqual(after);
    expect(after).toMatchObject({ state: 'succeeded', archive_attempts: 1, video_sha256: done.video.sha256 });
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(1);
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([`videos/${id}.mp4`]);
    expect(videoEventsFor(h, id)).toHaveLength(1);
  }, 50_000);
});
