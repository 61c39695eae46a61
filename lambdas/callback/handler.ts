import { config } from '../shared/config';
import { handleCallback } from '../shared/core/callback';
import { httpHandler } from '../shared/handler-kit';
import { callbackSecret, queues, taskStore, usageStore } from '../shared/parts';
import { upstreamRegistry } from '../shared/providers';

const c = config();

export const handler = httpHandler(handleCallback, {
  config: c,
  store: taskStore(c),
  usage: usageStore(c),
  upstreams: upstreamRegistry(c),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
});
