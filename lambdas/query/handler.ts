import { queryTasks } from '../shared/core/query';
import { httpHandler } from '../shared/handler-kit';

export const handler = httpHandler(queryTasks);
