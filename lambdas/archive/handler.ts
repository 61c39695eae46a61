import { archiveJobSchema } from '../shared/contracts';
import { archiveTask } from '../shared/core/archive';
import { queueHandler } from '../shared/handler-kit';

export const handler = queueHandler(archiveJobSchema, archiveTask);
