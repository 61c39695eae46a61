import { config } from '../shared/config';
import { submitTask } from '../shared/core/submit';
import { httpHandler } from '../shared/handler-kit';
import { callbackSecret, circuits, idempotencyStore, keyStore, queues, taskStore } from '../shared/parts';
import { upstreamRegistry } from '../shared/providers';

const c = config();

export const handler = httpHandler(submitTask, {
  config: c,
  store: taskStore(c),
  keys: keyStore(c),
  idempotency: idempotencyStore(c),
  upstreams: upstreamRegistry(c),
  circuits: circuits(c),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
});
