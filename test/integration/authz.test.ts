import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyStore, hashKey, keyId, newApiKey } from '../../lambdas/shared/api-keys';
import { localCredentials } from '../../local/embedded-aws';
import { startHarness, type Harness } from './helpers';

// This file loads the gateway's logger (through api-keys) before the harness starts, so
// give it the level the local runtime would.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
});

/**
 * Who may do what: every endpoint of the client API, tried with no key, an unknown key, a
 * revoked key and another tenant's key. A task belongs to the key that made it; anyone
 * else is told it does not exist.
 */

const PRESIGN_TTL_SECONDS = 900;
const body = { model: 'sora-2', prompt: 'a lighthouse in a storm' };

type Endpoint = { name: string; method: 'GET' | 'POST'; path: (id: string) => string };
const endpoints: Endpoint[] = [
  { name: 'POST /v1/videos/generations', method: 'POST', path: () => '/v1/videos/generations' },
  { name: 'GET /v1/videos/generations', method: 'GET', path: () => '/v1/videos/generations?limit=100' },
  { name: 'GET /v1/videos/generations/{id}', method: 'GET', path: (id) => `/v1/videos/generations/${id}` },
  { name: 'GET /v1/videos/tasks/{id}', method: 'GET', path: (id) => `/v1/videos/tasks/${id}` },
  { name: 'GET /v1/videos/generations/{id}/content', method: 'GET', path: (id) => `/v1/videos/generations/${id}/content` },
];
const taskEndpoints = endpoints.filter((e) => e.path('x').includes('/x'));

function tableOf(h: Harness) {
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: h.gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials }),
  );
  return {
    db,
    /** Keys as an operator manages them (what `npm run keys` does), with no cache. */
    keys: new ApiKeyStore(db, h.gw.tableName, 0),
    /** Every item's key: what a request wrote, if anything. */
    async pks() {
      const { Items = [] } = await db.send(new ScanCommand({ TableName: h.gw.tableName, ProjectionExpression: 'pk' }));
      return Items.map((i) => String(i.pk)).sort();
    },
  };
}

/** Send `authorization` exactly as given (or none). */
function call(h: Harness, e: Endpoint, id: string, authorization: string | null) {
  return h.api(e.path(id), {
    key: null,
    method: e.method,
    headers: {
      ...(authorization === null ? {} : { authorization }),
      ...(e.method === 'POST' ? { 'content-type': 'application/json' } : {}),
    },
    body: e.method === 'POST' ? JSON.stringify(body) : undefined,
  });
}

async function expectError(res: Response, status: number, code: string, message?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const type = status === 401 ? 'authentication_error' : 'invalid_request_error';
  expect(await res.json()).toEqual({ error: { code, message: message ?? expect.any(String), type } });
}

const presigned = (url: string) => new URL(url).searchParams;

describe('authorization and tenancy (key cache off: KEY_CACHE_SECONDS=0)', () => {
  let h: Harness;
  let table: ReturnType<typeof tableOf>;
  let owner: string;
  let ownerTask: string;
  let other: string;
  let otherTask: string;
  let revoked: string;
  let revokedTask: string;

  beforeAll(async () => {
    h = await startHarness({ renderMs: 100, env: { KEY_CACHE_SECONDS: '0', PRESIGN_TTL_SECONDS: String(PRESIGN_TTL_SECONDS) } });
    table = tableOf(h);
    owner = h.gw.apiKey;
    other = await h.gw.createKey('tenant b');
    revoked = await h.gw.createKey('to be revoked');

    const submit = async (key: string, prompt: string) =>
      ((await (await h.submit({ ...body, prompt }, { authorization: `Bearer ${key}` })).json()) as { id: string }).id;
    ownerTask = await submit(owner, 'owner task');
    otherTask = await submit(other, 'tenant b task');
    revokedTask = await submit(revoked, 'task of a key revoked later');
    await h.waitForStatus(ownerTask, 'succeeded');
    expect(await table.keys.revoke(keyId(hashKey(revoked)))).toBe(true);
  });
  afterAll(() => h?.close());

  const rejected: [string, () => string | null][] = [
    ['no Authorization header', () => null],
    ['an empty Authorization header', () => ''],
    ['"Bearer" with no key', () => 'Bearer '],
    ['an unknown key', () => `Bearer ${newApiKey()}`],
    ['an unknown bare key', () => newApiKey()],
    ['Basic credentials', () => `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['a revoked key', () => `Bearer ${revoked}`],
    ['a revoked bare key', () => revoked],
    ['the hash of a valid key instead of the key', () => `Bearer ${hashKey(owner)}`],
  ];

  describe.each(endpoints)('$name', (e) => {
    it.each(rejected)('with %s is 401 unauthorized, as the JSON error', async (_name, authorization) => {
      // The revoked key's own task: revocation shuts its owner out, it is not a 404.
      const id = authorization()?.includes(revoked) ? revokedTask : ownerTask;
      await expectError(await call(h, e, id, authorization()), 401, 'unauthorized');
    });

    it('accepts the key as "Bearer <key>" and as the bare key', async () => {
      for (const authorization of [`Bearer ${owner}`, owner, `bearer  ${owner} `]) {
        const res = await call(h, e, ownerTask, authorization);
        expect(res.status, authorization).toBe(e.name.endsWith('/content') ? 302 : 200);
      }
    });
  });

  it('a rejected submit writes nothing and never reaches the upstream', async () => {
    const submit = endpoints[0]!;
    const ownerList = async () => ((await (await h.api('/v1/videos/generations?limit=100')).json()) as any).data.map((t: any) => t.id);
    const itemsBefore = await table.pks();
    const listBefore = await ownerList();
    const upstreamBefore = h.gw.upstream.stats.submitsReceived;
    for (const [name, authorization] of rejected) {
      const res = await call(h, submit, '', authorization());
      expect(res.status, name).toBe(401);
      // The same request with an Idempotency-Key must not claim it either.
      const again = await h.api('/v1/videos/generations', {
        key: null,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `rejected-${name}`, ...(authorization() === null ? {} : { authorization: authorization()! }) },
        body: JSON.stringify(body),
      });
      expect(again.status, name).toBe(401);
    }
    expect(await table.pks()).toEqual(itemsBefore);
    expect(await ownerList()).toEqual(listBefore);
    expect(h.gw.upstream.stats.submitsReceived).toBe(upstreamBefore);
  });

  describe("another tenant's key", () => {
    it.each(taskEndpoints)("gets 404 for the owner's task on $name, exactly as for a task that does not exist", async (e) => {
      for (const authorization of [`Bearer ${other}`, other]) {
        const res = await call(h, e, ownerTask, authorization);
        const missing = await call(h, e, 'task_00000000000000000000000000', authorization);
        expect(res.status).toBe(404);
        expect(res.headers.get('location')).toBeNull();
        const answer = await res.json();
        expect(answer).toEqual({ error: { code: 'not_found', type: 'invalid_request_error', message: 'no such task' } });
        expect(await missing.json()).toEqual(answer);
      }
      // The owner still gets it.
      expect((await call(h, e, ownerTask, `Bearer ${owner}`)).status).toBe(e.name.endsWith('/content') ? 302 : 200);
    });

    it('and the owner gets 404 for the other tenant\'s task: it works both ways', async () => {
      for (const e of taskEndpoints) await expectError(await call(h, e, otherTask, `Bearer ${owner}`), 404, 'not_found', 'no such task');
      expect((await call(h, taskEndpoints[0]!, otherTask, `Bearer ${other}`)).status).toBe(200);
    });

    it("never sees the owner's tasks in its list, and the owner never sees its tasks", async () => {
      const list = async (key: string) =>
        ((await (await h.api('/v1/videos/generations?limit=100', { key })).json()) as any).data.map((t: any) => t.id) as string[];
      const mine = await list(owner);
      const theirs = await list(other);
      expect(mine).toContain(ownerTask);
      expect(mine).not.toContain(otherTask);
      expect(mine).not.toContain(revokedTask);
      expect(theirs).toEqual([otherTask]);
    });

    it('a revoked key\'s tasks stay invisible to everyone else', async () => {
      for (const key of [owner, other]) await expectError(await call(h, taskEndpoints[0]!, revokedTask, `Bearer ${key}`), 404, 'not_found');
    });
  });

  it('revocation takes effect on the next request when the cache is off', async () => {
    const key = await h.gw.createKey('short-lived');
    const list = () => h.api('/v1/videos/generations', { key });
    expect((await list()).status).toBe(200);
    expect(await table.keys.revoke(keyId(hashKey(key)))).toBe(true);
    await expectError(await list(), 401, 'unauthorized', 'unknown or revoked API key');
  });

  describe('presigned video URLs', () => {
    const view = async () => (await (await h.api(`/v1/videos/generations/${ownerTask}`)).json()) as any;
    const pause = () => new Promise((r) => setTimeout(r, 1_100)); // SigV4 dates have one-second resolution

    it('are minted fresh on each read of the task, valid for PRESIGN_TTL_SECONDS', async () => {
      const first = await view();
      await pause();
      const before = Math.floor(Date.now() / 1000);
      const second = await view();
      const after = Math.floor(Date.now() / 1000);
      const [a, b] = [presigned(first.video.url), presigned(second.video.url)];
      expect(first.video.url).not.toBe(second.video.url);
      expect(b.get('X-Amz-Date')).not.toBe(a.get('X-Amz-Date'));
      expect(b.get('X-Amz-Signature')).not.toBe(a.get('X-Amz-Signature'));
      expect(second.video.expires_at).toBeGreaterThan(first.video.expires_at);
      for (const [v, q] of [[first, a], [second, b]] as const) {
        expect(q.get('X-Amz-Expires')).toBe(String(PRESIGN_TTL_SECONDS));
        expect(v.data.videos[0].url).toBe(v.video.url);
      }
      expect(second.video.expires_at).toBeGreaterThanOrEqual(before + PRESIGN_TTL_SECONDS);
      expect(second.video.expires_at).toBeLessThanOrEqual(after + PRESIGN_TTL_SECONDS);
    });

    it('the /content redirect and the list mint their own, with the same lifetime', async () => {
      const content = async () => (await h.api(`/v1/videos/generations/${ownerTask}/content`)).headers.get('location')!;
      const listed = async () =>
        ((await (await h.api('/v1/videos/generations?limit=100')).json()) as any).data.find((t: any) => t.id === ownerTask).video.url as string;
      const first = [await content(), await listed()];
      await pause();
      const second = [await content(), await listed()];
      for (let i = 0; i < first.length; i++) {
        expect(second[i]).not.toBe(first[i]);
        expect(presigned(second[i]!).get('X-Amz-Date')).not.toBe(presigned(first[i]!).get('X-Amz-Date'));
        expect(presigned(first[i]!).get('X-Amz-Expires')).toBe(String(PRESIGN_TTL_SECONDS));
        expect(new URL(first[i]!).pathname).toMatch(new RegExp(`/videos/${ownerTask}\\.mp4$`));
      }
    });
  });
});

describe('revocation with a key cache (KEY_CACHE_SECONDS=1)', () => {
  let h: Harness;

  beforeAll(async () => {
    // Handlers read their configuration once per module load: load them afresh for this gateway.
    vi.resetModules();
    const fresh = (await import('./helpers')) as typeof import('./helpers');
    h = await fresh.startHarness({ env: { KEY_CACHE_SECONDS: '1' } });
  });
  afterAll(() => h?.close());

  it('a revoked key keeps working at most until its cached lookup expires, then is refused', async () => {
    const table = tableOf(h);
    const key = await h.gw.createKey('cached');
    const list = () => h.api('/v1/videos/generations', { key });
    expect((await h.api('/v1/videos/generations')).status).toBe(200); // warm handlers: the timing below is the cache's
    const cachedAt = Date.now();
    expect((await list()).status).toBe(200); // the lookup is now cached for 1 s
    expect(await table.keys.revoke(keyId(hashKey(key)))).toBe(true);
    const revokedAt = Date.now();

    const early = await list();
    if (Date.now() < cachedAt + 900) expect(early.status).toBe(200); // still inside the cache time

    let refusedAt: number | undefined;
    while (refusedAt === undefined && Date.now() < revokedAt + 3_000) {
      const res = await list();
      if (res.status === 401) refusedAt = Date.now();
      else expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refusedAt).toBeDefined();
    expect(refusedAt! - cachedAt).toBeLessThanOrEqual(1_000 + 250);
    await expectError(await list(), 401, 'unauthorized', 'unknown or revoked API key');
  });
});
