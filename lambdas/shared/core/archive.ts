import type { ArchiveJob } from '../contracts/jobs';
import { renditionVariants, type Renditions, type TaskRecord } from '../contracts/task';
import { backoffSeconds } from '../backoff';
import { logger } from '../logger';
import { isShortVideo, recordedVideo, type VideoFacts } from '../task-store';
import { renditionKey, videoKey } from '../video-links';
import type { Needs } from './deps';
import { taskUpstreamName } from './task-upstream';
import { videoHeaders } from '../providers/upstream-keys';
import { afterFinish } from './finish';
import { metric, record, unit } from '../metrics';

type ArchiveNeeds = Needs<'config' | 'store' | 'usage' | 'archiver' | 'queues'>;

/** Another worker took the task over (this attempt outlived its lease): it is theirs to finish. */
class ArchiveLeaseLost extends Error {}

/**
 * One archive job: copy the finished video into the bucket, then mark the task succeeded.
 * A video stored is a task succeeded: its facts are recorded before the object appears, and
 * an attempt that finds the object an earlier one stored finishes from it, without fetching
 * anything again (the upstream URL may be gone by then). A failed copy is retried with
 * backoff; after the last attempt the task fails with `archive_failed`. The upstream is
 * never asked to render again.
 */
export async function archiveTask(job: ArchiveJob, d: ArchiveNeeds): Promise<void> {
  const task = await d.store.claimArchive(job.taskId, job.attempt);
  if (!task) return; // finished, failed, or another worker holds it
  const recorded = recordedVideo(task);
  try {
    const started = Date.now();
    const stored = recorded && (await d.archiver.findStored(recorded));
    const source = task.upstream_video_url!;
    const beforeStore = async (facts: VideoFacts) => {
      if (!(await d.store.recordVideo(task.id, facts, task.archive_lease_until!)))
        throw new ArchiveLeaseLost('another worker took the task over');
    };
    // An object the upstream wrote into our bucket is copied inside S3; anything else is downloaded.
    const facts =
      stored ??
      (source.startsWith('s3://')
        ? await d.archiver.copy(source, videoKey(task.id), { beforeStore })
        : await d.archiver.archive(source, videoKey(task.id), { beforeStore, headers: await downloadHeaders(task, source, d) }));
    const video = { ...facts, short: isShortVideo(task.duration, facts.durationSeconds) };
    if (!stored) {
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      record(metric.archiveBytes, video.bytes, unit.Bytes);
      record(metric.archiveThroughput, video.bytes / seconds, unit.BytesPerSecond);
    }
    const done = await d.store.markSucceeded(task, video, await storeRenditions(task, d));
    logger.info(stored ? 'video found stored by an earlier attempt' : 'video archived', { taskId: task.id, bytes: video.bytes, attempt: job.attempt });
    await afterFinish(done, d);
  } catch (error) {
    if (error instanceof ArchiveLeaseLost) {
      logger.warn('archive attempt outlived its lease, left to the worker holding it', { taskId: task.id, attempt: job.attempt });
      return;
    }
    const reason = (error as Error).message;
    const max = d.config.ARCHIVE_MAX_ATTEMPTS;
    if (job.attempt >= max) {
      logger.error('archive failed for good', { taskId: task.id, attempts: job.attempt, reason });
      const failed = await d.store.markFailed(task,
        'archive_failed',
        `the video could not be archived after ${job.attempt} attempt${job.attempt === 1 ? '' : 's'}: ${reason}`,
      );
      await afterFinish(failed, d);
      return;
    }
    const delay = backoffSeconds(job.attempt, { base: 10, cap: 600 });
    logger.warn('archive attempt failed, will retry', { taskId: task.id, attempt: job.attempt, retryInSeconds: delay, reason });
    // The reconciler re-sends the job should this message be lost.
    await d.store.releaseArchive(task.id, d.store.now() + (delay + 120) * 1000, reason);
    await d.queues.archive({ taskId: task.id, attempt: job.attempt + 1 }, delay);
  }
}

/**
 * The still images the upstream offers beside the video, stored next to it. Best effort: a
 * video is never failed, or fetched again, for want of its thumbnail; a variant that could
 * not be had is left out, and `content?variant=` answers 404 for it.
 */
async function storeRenditions(task: TaskRecord, d: ArchiveNeeds): Promise<Renditions> {
  const stored: Renditions = {};
  for (const variant of renditionVariants) {
    const url = task.upstream_renditions?.[variant];
    if (!url) continue;
    try {
      stored[variant] = await d.archiver.storeImage(url, renditionKey(task.id, variant), await downloadHeaders(task, url, d));
    } catch (error) {
      logger.warn('rendition not stored', { taskId: task.id, variant, reason: (error as Error).message });
    }
  }
  return stored;
}

/** The headers for one of the task's upstream's video URLs (providers/upstream-keys.ts). */
async function downloadHeaders(task: TaskRecord, url: string, d: Needs<'config'>): Promise<Record<string, string> | undefined> {
  const name = taskUpstreamName(task, d.config);
  const entry = d.config.catalog.upstreams.find((u) => u.name === name);
  return entry && videoHeaders(entry, url, d.config);
}
