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
    size: task.size ?? defaultSizes[task.aspect_ratio],
    seconds: String(task.duration),
    remixed_from_video_id: null,
    error: task.state === 'failed' ? { code: task.error_code ?? 'failed', message: task.error_message ?? '' } : null,
  };
}
