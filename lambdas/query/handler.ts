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
  videos: videoLinks(c),
  admin: { config: c, circuits: circuits(c) },
  // Read with the first request that needs them: the other reads never parse the catalog or the limits.
  get models() {
    return c.catalog.models;
  },
  get defaultLimits() {
    return c.DEFAULT_LIMITS;
  },
});
