import { config } from '../shared/config';
import { reconcile } from '../shared/core/reconcile';
import { scheduledHandler } from '../shared/job-handlers';
import { callbackSecret, circuits, queues, taskStore, usageStore } from '../shared/parts';
import { upstreamRegistry } from '../shared/providers';

const c = config();
const deps = {
  config: c,
  store: taskStore(c),
  usage: usageStore(c),
  upstreams: upstreamRegistry(c),
  circuits: circuits(c),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
};

/** Invoked every minute by the schedule. */
export const handler = scheduledHandler(() => reconcile(deps));
