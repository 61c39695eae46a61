import { config } from '../shared/config';
import { archiveJobSchema } from '../shared/contracts/jobs';
import { archiveTask } from '../shared/core/archive';
import { queueHandler } from '../shared/job-handlers';
import { queues, taskStore, usageStore } from '../shared/parts';
import { videoArchiver } from '../shared/videos';

const c = config();

export const handler = queueHandler(archiveJobSchema, archiveTask, {
  config: c,
  store: taskStore(c),
  usage: usageStore(c),
  archiver: videoArchiver(c),
  queues: queues(c),
});
