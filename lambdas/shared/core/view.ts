import type { TaskRecord } from '../contracts/task';
import type { TaskView } from '../contracts/view';
import type { VideoLinks } from '../video-links';

const publicState = {
  queued: 'pending',
  submitted: 'running',
  in_progress: 'running',
  archiving: 'running',
  succeeded: 'succeeded',
  failed: 'error',
} as const;

const publicStatus = {
  queued: 'queued',
  submitted: 'in_progress',
  in_progress: 'in_progress',
  archiving: 'in_progress',
  succeeded: 'succeeded',
  failed: 'failed',
} as const;

/** The stretch of work a task is in, finer than `status`: what a progress display names. */
const publicPhase = {
  queued: 'queued',
  submitted: 'rendering',
  in_progress: 'rendering',
  archiving: 'archiving',
  succeeded: 'succeeded',
  failed: 'failed',
} as const;

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

/** The task as clients read it: the seed provider's shape plus the gateway's fields. A finished video gets a fresh presigned URL. */
export async function taskView(task: TaskRecord, videos: Pick<VideoLinks, 'presign'>): Promise<TaskView> {
  const link = task.state === 'succeeded' && task.video_key ? await videos.presign(task.video_key) : undefined;
  const error = task.state === 'failed' ? { code: task.error_code ?? 'failed', message: task.error_message ?? '' } : null;
  return {
    id: task.id,
    state: publicState[task.state],
    // Archiving is the last stretch of work: 100 only once the video is ours.
    progress: task.state === 'succeeded' ? 100 : Math.min(task.progress, 99),
    data: { videos: link ? [{ url: link.url }] : [] },
    message: error?.message ?? '',
    status: publicStatus[task.state],
    phase: publicPhase[task.state],
    model: task.model,
    prompt: task.prompt,
    aspect_ratio: task.aspect_ratio,
    duration: task.duration,
    created_at: seconds(task.created_at)!,
    updated_at: seconds(task.updated_at)!,
    completed_at: seconds(task.completed_at),
    remixed_from: task.remixed_from ?? null,
    video:
      link && task.video_bytes !== undefined
        ? {
            url: link.url,
            expires_at: link.expiresAt,
            bytes: task.video_bytes,
            content_type: task.video_content_type ?? 'video/mp4',
            sha256: task.video_sha256 ?? '',
            ...(task.video_duration_seconds === undefined
              ? {}
              : {
                  duration_seconds: task.video_duration_seconds,
                  width: task.video_width,
                  height: task.video_height,
                  codec: task.video_codec,
                  short: task.video_short ?? false,
                }),
          }
        : null,
    error,
  };
}
