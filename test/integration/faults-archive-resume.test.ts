import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
});

import { dynamo } from '../../lambdas/shared/aws/dynamo';
import { config } from '../../lambdas/shared/config';
import { archiveTask } from '../../lambdas/shared/core/archive';
import { queues, taskStore, usageStore } from '../../lambdas/shared/parts';
import { ARCHIVE_LEASE_MS, TaskStore, type VideoFacts } from '../../lambdas/shared/task-store';
import { videoArchiver } from '../../lambdas/shared/videos';
import { upstreamRegistry } from '../../lambdas/shared/providers';
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
 * Issue 14, point 2: a video stored is a task succeeded. An archive worker that dies after
 * the object appeared in the bucket and before the task was marked succeeded leaves a task
 * that the next attempt finishes from the stored object: no second download, no second S3
 * event, even when the upstream's URL has gone by then.
 */

let h: Harness;
let ops: Backstage;
let hooks: HookReceiver;
let stage: FaultStage;

beforeAll(async () => {
  stage = await startFaultStage({ renderMs: 200, env: { ARCHIVE_MAX_ATTEMPTS: '3', SILENT_AFTER_SECONDS: '3600' } });
  ({ h, ops, hooks } = stage);
});

afterAll(() => stage?.close());

/** The worker dies at this point: nothing after it ever runs. */
const dies = () => new Promise<never>(() => undefined);

/** The archive worker's collaborators, in this process, over the gateway's own table, bucket and queues. */
function workerParts(store: TaskStore) {
  const c = config();
  return { config: c, store, usage: usageStore(c), archiver: videoArchiver(c), queues: queues(c), upstreams: upstreamRegistry(c) };
}

/** A task store whose worker dies right after the video was stored, before the task is marked succeeded. */
class DiesAfterStoring extends TaskStore {
  override markSucceeded(): Promise<undefined> {
    return dies();
  }
}

/** A task store whose worker dies after recording the video's facts, before the object appears. */
class DiesBeforeStoring extends TaskStore {
  recorded: VideoFacts | undefined;
  override async recordVideo(id: string, video: VideoFacts, leaseUntil: number): Promise<undefined> {
    this.recorded = video;
    await super.recordVideo(id, video, leaseUntil);
    return dies();
  }
}

/**
 * A task whose render finished (its callbacks lost, so nothing else moves it), put into
 * `archiving` as the callback would, with its first archive attempt run by `store`'s worker.
 */
async function firstAttemptDies(prompt: string, store: TaskStore) {
  const id = await submitOk(h, { prompt: `${prompt} sim:callback=drop`, callback_url: hooks.url });
  const sim = upstreamTask(h, (await ops.item(id)).upstream_id);
  await eventually('the render to finish', () => (sim.state === 'succeeded' ? true : undefined));
  const gateway = taskStore(config());
  expect(await gateway.startArchiving(id, sim.videoUrl, sim.id, Date.now() + ARCHIVE_LEASE_MS)).toBeDefined();
  const before = upstreamStats(h);
  void archiveTask({ taskId: id, attempt: 1 }, workerParts(store));
  return { id, sim, before };
}

/** The dead worker's lease runs out (16 minutes, here at once) and the reconciler sends the job again. */
async function leaseRunsOut(id: string) {
  await ops.setAttributes(id, { archive_lease_until: Date.now() - 1, due_at: Date.now() - 1 });
  await h.gw.reconcileNow();
}

async function succeededOnce(id: string, expected: { sha256: string; bytes: number }) {
  const done = await h.waitForStatus(id, 'succeeded');
  expect(done.video).toMatchObject(expected);
  expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual(expected);
  const delivery = await eventually('the webhook', () => deliveriesFor(hooks.deliveries, id)[0]);
  expect(verifiedPayload(h.gw.webhookSecret, delivery)).toMatchObject({ id, status: 'succeeded', video: expected });
  await queuesSettled(h);
  expect(videoEventsFor(h, id)).toHaveLength(1);
  expect(deliveriesFor(hooks.deliveries, id)).toHaveLength(1);
  return done;
}

describe('an archive worker that dies after storing the video', () => {
  it('leaves the video facts recorded on the archiving task, and the retry finishes from the stored object without downloading again (multipart, 9 MiB)', async () => {
    const store = new DiesAfterStoring(dynamo(), config().TABLE_NAME);
    const { id, sim, before } = await firstAttemptDies('a glacier calving sim:bytes=9M', store);
    const expected = { sha256: videoSha256({ taskId: sim.id, ...sim.video }), bytes: sim.video.bytes };
    await eventually('the S3 event of the first attempt', () => videoEventsFor(h, id)[0]);
    const crashed = await ops.item(id);
    expect(crashed).toMatchObject({ state: 'archiving', video_key: `videos/${id}.mp4`, video_bytes: expected.bytes, video_sha256: expected.sha256 });
    expect((await h.api(`/v1/videos/generations/${id}`).then((r) => r.json()) as any).status).toBe('in_progress');

    await leaseRunsOut(id);
    await succeededOnce(id, expected);
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(1);
    expect(await ops.item(id)).toMatchObject({ state: 'succeeded', archive_attempts: 2 });
  });

  it('finishes the task from the stored object even when the upstream URL is gone by then', async () => {
    const store = new DiesAfterStoring(dynamo(), config().TABLE_NAME);
    const { id, sim, before } = await firstAttemptDies('a tide pool at noon', store);
    const expected = { sha256: videoSha256({ taskId: sim.id, ...sim.video }), bytes: sim.video.bytes };
    await eventually('the S3 event of the first attempt', () => videoEventsFor(h, id)[0]);
    (sim.faults as SimFaults).video = 'gone';
    expect((await fetch(sim.videoUrl)).status).toBe(404);

    await leaseRunsOut(id);
    await succeededOnce(id, expected);
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(1);
  });
});

describe('an archive worker that dies after recording the video, before storing it', () => {
  it('leaves no object; the retry downloads again and stores the video once', async () => {
    const store = new DiesBeforeStoring(dynamo(), config().TABLE_NAME);
    const { id, sim, before } = await firstAttemptDies('a moth at a window sim:bytes=9M', store);
    const expected = { sha256: videoSha256({ taskId: sim.id, ...sim.video }), bytes: sim.video.bytes };
    await eventually('the video facts to be recorded', async () => ((await ops.item(id)).video_sha256 ? true : undefined));
    expect(store.recorded).toMatchObject({ key: `videos/${id}.mp4`, ...expected });
    expect(await ops.objectKeys(`videos/${id}`)).toEqual([]);

    await leaseRunsOut(id);
    await succeededOnce(id, expected);
    expect(h.gw.upstream.stats.videoDownloadsStarted - before.videoDownloadsStarted).toBe(2);
  });
});
