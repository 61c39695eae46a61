import { config } from '../shared/config';
import { handleCallback } from '../shared/core/callback';
import { httpHandler } from '../shared/handler-kit';
import { callbackSecret, queues, taskStore } from '../shared/parts';
import { providerFor } from '../shared/providers';

const c = config();

export const handler = httpHandler(handleCallback, {
  config: c,
  store: taskStore(c),
  provider: providerFor(c),
  queues: queues(c),
  callbackSecret: callbackSecret(c),
});
