import { config } from '../shared/config';
import { handleCallback } from '../shared/core/callback';
import { httpHandler } from '../shared/handler-kit';
import { callbackSecret, queues, taskStore } from '../shared/parts';
import { providerFor, upstreamRegistry } from '../shared/providers';

const c = config();
const upstreams = upstreamRegistry(c);

export const handler = httpHandler(handleCallback, {
  config: c,
  store: taskStore(c),
  provider: providerFor(c, upstreams),
  upstreams,
  queues: queues(c),
  callbackSecret: callbackSecret(c),
});
