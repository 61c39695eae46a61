import { config } from '../shared/config';
import { notifyJobSchema } from '../shared/contracts/jobs';
import { notifyTask } from '../shared/core/notify';
import { queueHandler } from '../shared/job-handlers';
import { keyStore, queues, taskStore } from '../shared/parts';
import { videoLinks } from '../shared/parts-s3';

const c = config();

export const handler = queueHandler(notifyJobSchema, notifyTask, {
  config: c,
  store: taskStore(c),
  keys: keyStore(c),
  videos: videoLinks(c),
  queues: queues(c),
});
