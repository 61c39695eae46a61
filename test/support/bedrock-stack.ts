import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { s3ClientFor } from '../../lambdas/shared/aws/s3';
import { localCredentials } from '../../local/embedded-aws';
import { startSimulatedBedrock, type SimulatedBedrock, type SimulatedBedrockOptions } from '../../local/bedrock-upstream';

/** An embedded S3 (s3rver) with one bucket, on 127.0.0.1, and a gateway-configured client for it. */
export interface EmbeddedS3 {
  endpoint: string;
  bucket: string;
  s3: S3Client;
  /** An object's bytes, or undefined when there is none. */
  read(key: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export async function startEmbeddedS3(bucket = 'gateway-videos'): Promise<EmbeddedS3> {
  const directory = mkdtempSync(join(tmpdir(), 'vtg-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, allowMismatchedSignatures: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const s3 = s3ClientFor(endpoint, { region: 'us-east-1', credentials: localCredentials });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    s3,
    async read(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await out.Body!.transformToByteArray());
      } catch (error) {
        if ((error as Error).name === 'NoSuchKey') return undefined;
        throw error;
      }
    },
    async close() {
      s3.destroy();
      server.httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** The simulated Bedrock runtime writing into a fresh embedded S3. */
export async function startBedrockStack(options: Omit<SimulatedBedrockOptions, 's3'> = {}): Promise<{ s3: EmbeddedS3; bedrock: SimulatedBedrock; close(): Promise<void> }> {
  const s3 = await startEmbeddedS3();
  const bedrock = await startSimulatedBedrock({ ...options, s3: s3.s3 });
  return {
    s3,
    bedrock,
    async close() {
      await bedrock.close();
      await s3.close();
    },
  };
}
