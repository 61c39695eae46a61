import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import dynalite from 'dynalite';
import { drainableRequests } from './request-drain';

/** How long closing the embedded DynamoDB waits for operations in progress (each takes milliseconds). */
const DYNAMO_CLOSE_GRACE_MS = 5_000;

export interface EmbeddedDynamo {
  endpoint: string;
  /** Stops it once every operation being served is answered (bounded); resolves to how many were not. */
  close(): Promise<number>;
}

/** dynalite persisted under `path`, listening on `host` (a free port), in this process. */
export async function dynamoInProcess(path: string, host: string): Promise<EmbeddedDynamo> {
  const dynamo = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(0, host, () => resolve());
  });
  // dynalite runs an operation to its end even when its client has gone, and closes its
  // database as soon as no connection is left and no single read or write is pending, which
  // can fall between two steps of one operation (an UpdateItem's get, index writes, put). The
  // next step then finds the database closed and dynalite throws that error out of its
  // callback: an uncaught exception. So close() waits for every operation to be answered first.
  const requests = drainableRequests(dynamo);
  return {
    endpoint: `http://${host}:${(dynamo.address() as AddressInfo).port}`,
    async close() {
      // Bounded: an operation still running after it may meet the closed database.
      const unanswered = await requests.drain(DYNAMO_CLOSE_GRACE_MS);
      await new Promise<void>((resolve) => {
        dynamo.close(() => resolve());
        dynamo.closeAllConnections();
      });
      return unanswered;
    },
  };
}

/**
 * The same, in a child process (`dynamodb-process.ts`): off this process's CPU, as DynamoDB
 * is off a Lambda's. Told to stop by closing its standard input, which also stops it should
 * this process die; it answers with how many operations it left unanswered.
 */
export async function dynamoInOwnProcess(path: string, host: string): Promise<EmbeddedDynamo> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'local', 'dynamodb-process.ts'), path, host], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const line = async (what: string) => {
    const next = await Promise.race([lines.next(), exited.then((code) => ({ value: undefined, code }))]);
    if (typeof next.value !== 'string') throw new Error(`the DynamoDB process ended before it ${what} (exit ${String((next as { code?: number }).code)})`);
    return JSON.parse(next.value) as Record<string, number>;
  };
  const { port } = await line('listened');
  return {
    endpoint: `http://${host}:${port}`,
    async close() {
      child.stdin!.end();
      const { unanswered = 0 } = await line('stopped');
      await exited;
      return unanswered;
    },
  };
}
