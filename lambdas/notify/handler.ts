import { notifyJobSchema } from '../shared/contracts';
import { notifyTask } from '../shared/core/notify';
import { queueHandler } from '../shared/handler-kit';

export const handler = queueHandler(notifyJobSchema, notifyTask);
