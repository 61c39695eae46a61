import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { localCredentials } from '../local/embedded-aws';
import { startLocalGateway } from '../local/gateway';

/**
 * The submit benchmark's servers, in one process apart from the load generator:
 *
 * - the local gateway (`startLocalGateway`: the unchanged submit Lambda behind the local API
 *   Gateway, with its dynalite and simulated upstream in this process too);
 * - the baseline: a bare `node:http` server that, per POST, does the same I/O with no gateway
 *   code: one PutItem of a task-shaped item to the same dynalite table, then one POST to the
 *   same simulated upstream with the upstream key;
 * - the same baseline plus the UpdateItem that records the upstream's id, which the gateway
 *   also does (queued → submitted), to show how much of the gap is that second write.
 *
 * `node --import tsx bench/submit-servers.ts <dataDir>` prints the URLs as one JSON line and
 * stops when its stdin closes.
 */
const [dataDir] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: submit-servers.ts <dataDir>');

const gw = await startLocalGateway({
  dataDir,
  // An hour-long render that never finishes: no callbacks or archive work during the run.
  renderMs: 3_600_000,
  reconcileEveryMs: 3_600_000,
});
gw.upstream.setFaults({ render: 'stall' });

const { upstreamKey } = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as { upstreamKey: string };
const db = new DynamoDBClient({ endpoint: gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials, maxAttempts: 4 });
const agent = new http.Agent({ keepAlive: true });
const upstream = new URL(`${gw.upstream.url}/v1/videos/generations`);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function postUpstream(body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      upstream,
      {
        method: 'POST',
        agent,
        headers: { authorization: upstreamKey, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

function baselineServer(withUpdate: boolean) {
  return http.createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const request = JSON.parse(await readBody(req)) as { model: string; prompt: string };
      const id = `bench_${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
      const now = Date.now();
      // The item the gateway writes for a new task, attribute for attribute (both indexes included).
      await db.send(
        new PutItemCommand({
          TableName: gw.tableName,
          Item: {
            pk: S(`TASK#${id}`),
            id: S(id),
            owner: S('bench-owner'),
            state: S('queued'),
            progress: N(0),
            model: S(request.model),
            upstream_model: S(request.model),
            prompt: S(request.prompt),
            aspect_ratio: S('16:9'),
            duration: N(10),
            image_urls: { L: [] },
            characters: { L: [] },
            created_at: N(now),
            updated_at: N(now),
            deadline_at: N(now + 7_200_000),
            submit_attempts: N(0),
            open: S('open'),
            due_at: N(now + 45_000),
            expires_at: N(Math.floor(now / 1000) + 30 * 86400),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      const answer = await postUpstream(
        JSON.stringify({
          model: request.model,
          prompt: request.prompt,
          aspect_ratio: '16:9',
          duration: 10,
          callback_url: `${gw.url}/callbacks/upstream/${id}?token=bench`,
        }),
      );
      if (answer.status !== 200) throw new Error(`upstream answered ${answer.status}`);
      if (withUpdate) {
        const { id: upstreamId } = JSON.parse(answer.text) as { id: string };
        await db.send(
          new UpdateItemCommand({
            TableName: gw.tableName,
            Key: { pk: S(`TASK#${id}`) },
            UpdateExpression: 'SET #state = :submitted, upstream_id = :u, heard_at = :now, due_at = :due, updated_at = :now',
            ConditionExpression: 'attribute_exists(pk) AND #state IN (:queued)',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: { ':submitted': S('submitted'), ':queued': S('queued'), ':u': S(upstreamId), ':now': N(now), ':due': N(now + 300_000) },
            ReturnValues: 'ALL_NEW',
          }),
        );
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ id }));
    })().catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'baseline_failed', message: (error as Error).message } }));
    });
  });
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const baseline = baselineServer(false);
const baselineWithUpdate = baselineServer(true);
const urls = {
  gateway: `${gw.url}/v1/videos/generations`,
  baseline: `${await listen(baseline)}/v1/videos/generations`,
  baselineWithUpdate: `${await listen(baselineWithUpdate)}/v1/videos/generations`,
  apiKey: gw.apiKey,
};
process.stdout.write(`${JSON.stringify(urls)}\n`);

process.stdin.resume();
process.stdin.on('end', async () => {
  // Requests the load generator gave up on may still be in flight; let them finish first.
  await new Promise((r) => setTimeout(r, 1000));
  for (const server of [baseline, baselineWithUpdate]) {
    server.closeAllConnections();
    server.close();
  }
  agent.destroy();
  db.destroy();
  void gw.stop().then(() => process.exit(0));
});
