import * as z from 'zod/mini';

/**
 * `DATA_DIR/endpoints.json`: where a running local gateway's services listen, for `npm run
 * keys`. Written at start, removed at a clean stop; one left by a process that died is
 * stale, and its ports may by now belong to another gateway. `instance` tells them apart:
 * the gateway also tags its table with it (`INSTANCE_TAG`), so a reader can check that the
 * DynamoDB it reaches is the one of this data directory.
 */
export const ENDPOINTS_FILE = 'endpoints.json';
export const INSTANCE_TAG = 'local-gateway-instance';

export const localEndpointsSchema = z.object({
  pid: z.number().check(z.int(), z.positive()),
  instance: z.string().check(z.minLength(16)),
  url: z.url(),
  tableName: z.string().check(z.minLength(1)),
  bucketName: z.string().check(z.minLength(1)),
  dynamodb: z.url(),
  s3: z.url(),
  sqs: z.url(),
});
export type LocalEndpoints = z.infer<typeof localEndpointsSchema>;
