import { defaultSizes, type VideoObject } from '../contracts/openai';
import type { TaskRecord } from '../contracts/task';

const openaiStatus = {
  queued: 'queued',
  submitted: 'in_progress',
  in_progress: 'in_progress',
  archiving: 'in_progress',
  succeeded: 'completed',
  failed: 'failed',
} as const;

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

/** Seconds as OpenAI writes them (a string), to the hundredth: "10", "9.97". */
const secondsText = (s: number) => String(Math.round(s * 100) / 100);

/**
 * What the client was given: once the archived MP4 is measured, its own duration and frame
 * size; until then (and for videos archived before measuring), what was asked for.
 */
function delivered(task: TaskRecord): { size: string; seconds: string } {
  const asked = { size: task.size ?? defaultSizes[task.aspect_ratio], seconds: String(task.duration) };
  return {
    size: task.video_width && task.video_height ? `${task.video_width}x${task.video_height}` : asked.size,
    seconds: task.video_duration_seconds !== undefined ? secondsText(task.video_duration_seconds) : asked.seconds,
  };
}

/** A task as OpenAI's Video object, whichever dialect made it. */
export function videoObject(task: TaskRecord): VideoObject {
  return {
    id: task.id,
    object: 'video',
    model: task.model,
    status: openaiStatus[task.state],
    progress: task.state === 'succeeded' ? 100 : Math.min(task.progress, 99),
    created_at: seconds(task.created_at)!,
    completed_at: seconds(task.completed_at),
    expires_at: task.expires_at ?? null,
    prompt: task.prompt,
    ...delivered(task),
    remixed_from_video_id: task.remixed_from ?? null,
    error: task.state === 'failed' ? { code: task.error_code ?? 'failed', message: task.error_message ?? '' } : null,
  };
}
