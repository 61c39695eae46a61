/**
 * Where Bedrock writes its output in the gateway's bucket: a folder per task, in which
 * Bedrock makes one folder per invocation (`bedrock/{taskId}/{invocationId}/output.mp4`).
 * The IAM grants (lib/bedrock-access.ts) and the archive's server-side copy are scoped to
 * this prefix. No imports: the stack, the provider and the archive all read it.
 */
export const bedrockOutputPrefix = 'bedrock/';

/** The `s3OutputDataConfig.s3Uri` for one task. */
export const bedrockOutputUri = (bucket: string, taskId: string) => `s3://${bucket}/${bedrockOutputPrefix}${taskId}/`;

/** The file Bedrock's video models write in an invocation's folder. */
export const bedrockVideoFile = 'output.mp4';

/** `s3://bucket/key` into its parts; undefined for anything else. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  return m ? { bucket: m[1]!, key: m[2]! } : undefined;
}
