import { config } from '../shared/config';
import { submitTask } from '../shared/core/submit';
import { httpHandler } from '../shared/handler-kit';
import { callbackSecret, circuits, idempotencyStore, keyStore, queues, taskStore } from '../shared/parts';
import { providerFor, upstreamRegistry } from '../shared/providers';

const c = config();
const upstreams = upstreamRegistry(c);

export const handler = httpHandler(submitTask, {
  config: c,
  store: taskStore(c),
  keys: keyStore(c),
  idempotency: idempotencyStore(c),
  provider: providerFor(c, upstreams),
  upstreams,
  circuits: circuits(c),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
});
