import { config } from '../shared/config';
import { cancelTask, deleteTask } from '../shared/core/cancel';
import { createVideo, sdkCreateRoutes } from '../shared/core/openai';
import { remixTask, remixVideo } from '../shared/core/remix';
import { submitTask } from '../shared/core/submit';
import type { HttpEvent } from '../shared/http';
import { httpHandler } from '../shared/handler-kit';
import { inputImages, videoLinks } from '../shared/parts-s3';
import { callbackSecret, circuits, idempotencyStore, keyStore, queues, taskStore, usageStore } from '../shared/parts';
import { upstreamRegistry } from '../shared/providers';

const c = config();

/** The write side of the task API: submit and remix, and cancel (which may ask the upstream to stop). */
const writes = (event: HttpEvent, deps: Parameters<typeof createVideo>[1] & Parameters<typeof deleteTask>[1]) => {
  switch (event.routeKey) {
    case 'POST /v1/videos/generations/{id}/cancel':
      return cancelTask(event, deps);
    case 'POST /v1/videos':
      return createVideo(event, deps);
    case 'POST /v1/videos/generations/{id}/remix':
      return remixTask(event, deps);
    case 'POST /v1/videos/{id}/remix':
      return remixVideo(event, deps);
    case 'DELETE /v1/videos/{id}':
    case 'DELETE /v1/videos/generations/{id}':
      return deleteTask(event, deps);
    default:
      return submitTask(event, deps);
  }
};

export const handler = httpHandler(
  writes,
  {
    config: c,
    store: taskStore(c),
    usage: usageStore(c),
    keys: keyStore(c),
    idempotency: idempotencyStore(c),
    upstreams: upstreamRegistry(c),
    circuits: circuits(c),
    inputs: inputImages(c),
    videos: videoLinks(c),
    queues: queues(c),
    callbackSecret: callbackSecret(c),
  },
  // OpenAI's SDK retries a create's 5xx on its own, without an Idempotency-Key.
  { noBlindRetry: (event) => sdkCreateRoutes.has(event.routeKey) },
);
