import type { ArchiveJob } from '../contracts/jobs';
import { backoffSeconds } from '../backoff';
import { logger } from '../logger';
import { isShortVideo } from '../task-store';
import { videoKey } from '../video-links';
import type { Needs } from './deps';
import { afterFinish } from './finish';
import { metric, record, unit } from '../metrics';

type ArchiveNeeds = Needs<'config' | 'store' | 'archiver' | 'queues'>;

/**
 * One archive job: copy the finished video into the bucket, then mark the task succeeded.
 * A failed copy is retried with backoff; after the last attempt the task fails with
 * `archive_failed`. The upstream is never asked to render again.
 */
export async function archiveTask(job: ArchiveJob, d: ArchiveNeeds): Promise<void> {
  const task = await d.store.claimArchive(job.taskId, job.attempt);
  if (!task) return; // finished, failed, or another worker holds it
  const source = task.upstream_video_url!;
  try {
    const started = Date.now();
    const stored = await d.archiver.archive(source, videoKey(task.id));
    const video = { ...stored, short: isShortVideo(task.duration, stored.durationSeconds) };
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    record(metric.archiveBytes, video.bytes, unit.Bytes);
    record(metric.archiveThroughput, video.bytes / seconds, unit.BytesPerSecond);
    const done = await d.store.markSucceeded(task, video);
    logger.info('video archived', { taskId: task.id, bytes: video.bytes, attempt: job.attempt });
    await afterFinish(done, d);
  } catch (error) {
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
