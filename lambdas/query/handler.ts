import { config } from '../shared/config';
import { queryTasks } from '../shared/core/query';
import { httpHandler } from '../shared/handler-kit';
import { circuits, keyStore, taskStore, usageStore } from '../shared/parts';
import { videoLinks } from '../shared/parts-s3';

const c = config();

export const handler = httpHandler(queryTasks, {
  store: taskStore(c),
  keys: keyStore(c),
  usage: usageStore(c),
  defaultLimits: c.DEFAULT_LIMITS,
  videos: videoLinks(c),
  admin: { config: c, circuits: circuits(c) },
  // Read with the first request that lists models: the other reads never parse the catalog.
  get models() {
    return c.catalog.models;
  },
});
