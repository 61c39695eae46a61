import { config } from '../shared/config';
import { pollJobSchema } from '../shared/contracts/jobs';
import { pollTask } from '../shared/core/poll';
import { queueHandler } from '../shared/job-handlers';
import { queues, taskStore, usageStore } from '../shared/parts';
import { upstreamRegistry } from '../shared/providers';

const c = config();

/** Polls of upstreams that never call back, one delayed message per task at a time. */
export const handler = queueHandler(pollJobSchema, pollTask, {
  config: c,
  store: taskStore(c),
  usage: usageStore(c),
  upstreams: upstreamRegistry(c),
  queues: queues(c),
});
