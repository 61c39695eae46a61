import type { TaskRecord } from '../contracts/task';
import type { UpstreamProvider } from '../providers/provider';
import type { Needs } from './deps';

/**
 * The adapter of the upstream that holds (or may hold) the task's job: the route that took
 * it, read in that upstream's dialect. Older records name none: the first upstream then.
 */
export function taskUpstream(task: Pick<TaskRecord, 'upstream'>, d: Needs<'config' | 'upstreams'>): Promise<UpstreamProvider> {
  return d.upstreams.get(taskUpstreamName(task, d.config));
}

/** The name of that upstream. */
export const taskUpstreamName = (task: Pick<TaskRecord, 'upstream'>, config: Needs<'config'>['config']) =>
  task.upstream ?? config.catalog.upstreams[0]!.name;
