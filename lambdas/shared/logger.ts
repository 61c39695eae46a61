import { Logger } from '@aws-lambda-powertools/logger';

/** One structured logger for the gateway; `POWERTOOLS_LOG_LEVEL` sets the level. */
export const logger = new Logger({ serviceName: 'video-task-gateway' });
