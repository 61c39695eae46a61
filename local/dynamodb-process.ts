import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { drainableRequests } from './request-drain';

/**
 * The embedded DynamoDB in a process of its own (`startEmbeddedAws({ dynamodb: 'own-process' })`):
 * `node --import tsx local/dynamodb-process.ts <dir> <host>` prints `{"port":…}` once it
 * listens, and ends when its standard input closes (its parent stopped it, or died).
 */
const [path, host] = process.argv.slice(2);
const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
const requests = drainableRequests(server);
server.listen(0, host, () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.stdin.resume();
process.stdin.on('end', async () => {
  await requests.drain(5_000);
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
