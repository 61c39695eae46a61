import { handleCallback } from '../shared/core/callback';
import { httpHandler } from '../shared/handler-kit';

export const handler = httpHandler(handleCallback);
