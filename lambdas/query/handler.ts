import { config } from '../shared/config';
import { queryTasks } from '../shared/core/query';
import { httpHandler } from '../shared/handler-kit';
import { circuits, keyStore, taskStore, usageStore } from '../shared/parts';
import { videoLinks } from '../shared/parts-s3';

const c = config();
let admin: { config: typeof c; circuits: ReturnType<typeof circuits> } | undefined;

export const handler = httpHandler(queryTasks, {
  store: taskStore(c),
  keys: keyStore(c),
  usage: usageStore(c),
  videos: videoLinks(c),
  // Read with the first request that needs them: the other reads never parse the catalog or
  // the limits, nor build the upstream circuits that only the admin views show.
  get admin() {
    return (admin ??= { config: c, circuits: circuits(c) });
  },
  get models() {
    return c.catalog.models;
  },
  get defaultLimits() {
    return c.DEFAULT_LIMITS;
  },
});
