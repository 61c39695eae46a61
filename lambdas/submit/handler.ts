import { submitTask } from '../shared/core/submit';
import { httpHandler } from '../shared/handler-kit';

export const handler = httpHandler(submitTask);
