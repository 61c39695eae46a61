import { config } from '../shared/config';
import { reconcile } from '../shared/core/reconcile';
import { scheduledHandler } from '../shared/job-handlers';
import { callbackSecret, circuits, queues, taskStore, usageStore } from '../shared/parts';
import { inputImages } from '../shared/parts-s3';
import { upstreamRegistry } from '../shared/providers';

const c = config();
const deps = {
  config: c,
  store: taskStore(c),
  usage: usageStore(c),
  upstreams: upstreamRegistry(c),
  // A run over a backlog calls an upstream hundreds of times a second: its circuit is read once a second, not per task.
  circuits: circuits(c, { readCacheMs: 1000 }),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
  // A resubmitted task's uploaded image gets a link signed at the resubmit.
  inputs: inputImages(c),
};

/** Invoked every minute by the schedule. */
export const handler = scheduledHandler(() => reconcile(deps));
