/** Names of the local runtime's table and bucket, shared with the key tool. */
export const LOCAL_TABLE = 'video-task-gateway';
export const LOCAL_BUCKET = 'video-task-gateway-videos';
