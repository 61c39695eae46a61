import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AddressClass,
  checkUrl,
  classifyAddress,
  closeIdleConnections,
  cloudPolicy,
  isAllowedAddress,
  localPolicy,
  openGet,
  OutboundError,
  type OutboundErrorCode,
  type OutboundPolicy,
  postJson,
  type Resolver,
} from '../../lambdas/shared/outbound';

/** The cloud's address rules without its https rule, to reach plain-http test servers. */
const publicOnlyHttp: OutboundPolicy = { allowLoopback: false, requireHttps: false };

describe('classifyAddress', () => {
  const table: Array<[AddressClass, string[]]> = [
    [
      'public',
      [
        '8.8.8.8',
        '1.1.1.1',
        '93.184.216.34',
        '11.0.0.1',
        '100.63.255.255',
        '100.128.0.0',
        '172.15.255.255',
        '172.32.0.0',
        '192.167.255.255',
        '198.17.255.255',
        '198.20.0.0',
        '223.255.255.255',
        '2606:4700:4700::1111',
        '2001:4860:4860::8888',
        '::ffff:8.8.8.8',
        '64:ff9b::808:808',
        '2002:808:808::1',
      ],
    ],
    [
      'loopback',
      [
        '127.0.0.1',
        '127.255.255.254',
        '::1',
        '[::1]',
        '0:0:0:0:0:0:0:1',
        '::ffff:127.0.0.1',
        '::ffff:7f00:1',
        '0:0:0:0:0:ffff:7f00:0001',
        '::127.0.0.1',
        '64:ff9b::7f00:1',
        '2002:7f00:1::',
      ],
    ],
    [
      'private',
      [
        '10.0.0.1',
        '10.255.255.255',
        '100.64.0.1',
        '100.127.255.255',
        '172.16.0.1',
        '172.31.255.255',
        '192.168.1.1',
        '::ffff:10.0.0.1',
        '::ffff:a00:1',
        '::ffff:0:10.0.0.1',
        '64:ff9b::10.0.0.1',
      ],
    ],
    [
      'link-local',
      ['169.254.169.254', '169.254.0.1', '::ffff:a9fe:a9fe', '::ffff:169.254.169.254', 'fe80::1', 'fe80::1%eth0', 'febf::1'],
    ],
    ['unique-local', ['fc00::1', 'fd00:ec2::254', 'fdff:ffff::1']],
    [
      'reserved',
      [
        '0.0.0.0',
        '0.1.2.3',
        '192.0.0.1',
        '192.0.2.1',
        '198.18.0.1',
        '198.19.255.255',
        '198.51.100.7',
        '203.0.113.9',
        '224.0.0.1',
        '239.255.255.250',
        '240.0.0.1',
        '255.255.255.255',
        '::',
        'ff02::1',
        '2001:db8::1',
        '64:ff9b:1::1',
        '2001::1',
        'fec0::1',
        '100::1',
        '4000::1',
        // not canonical literals: fail closed
        '0177.0.0.1',
        '2130706433',
        'localhost',
        '',
      ],
    ],
  ];
  const cases = table.flatMap(([expected, ips]) => ips.map((ip) => [ip, expected] as const));

  it.each(cases)('%s is %s', (ip, expected) => {
    expect(classifyAddress(ip)).toBe(expected);
  });

  it('allows loopback only when the policy says so, and never private or link-local addresses', () => {
    expect(isAllowedAddress('127.0.0.1', localPolicy)).toBe(true);
    expect(isAllowedAddress('127.0.0.1', cloudPolicy)).toBe(false);
    expect(isAllowedAddress('::ffff:7f00:1', localPolicy)).toBe(true);
    for (const ip of ['10.0.0.1', '169.254.169.254', 'fd00:ec2::254', '0.0.0.0', '::']) {
      expect(isAllowedAddress(ip, localPolicy)).toBe(false);
    }
    expect(isAllowedAddress('8.8.8.8', cloudPolicy)).toBe(true);
  });
});

describe('checkUrl', () => {
  it.each([
    'https://example.com/video.mp4?X-Amz-Signature=abc',
    'https://8.8.8.8/x',
    'https://[2606:4700:4700::1111]/',
    'https://cdn.example.com:8443/v.mp4',
  ])('accepts %s in the cloud', (url) => {
    const verdict = checkUrl(url, cloudPolicy);
    expect(verdict.ok).toBe(true);
  });

  it.each<[string, 'bad_url' | 'blocked_address']>([
    ['http://example.com/', 'bad_url'],
    ['ftp://example.com/', 'bad_url'],
    ['file:///etc/passwd', 'bad_url'],
    ['gopher://example.com/', 'bad_url'],
    ['https://user:pass@example.com/', 'bad_url'],
    ['https://user@example.com/', 'bad_url'],
    ['not a url', 'bad_url'],
    ['/relative/path', 'bad_url'],
    ['https://127.0.0.1/', 'blocked_address'],
    ['http://127.0.0.1/', 'blocked_address'],
    ['https://2130706433/', 'blocked_address'],
    ['https://0177.0.0.1/', 'blocked_address'],
    ['https://0x7f.1/', 'blocked_address'],
    ['https://0x7f000001/', 'blocked_address'],
    ['https://127.1/', 'blocked_address'],
    ['https://%31%32%37.0.0.1/', 'blocked_address'],
    ['https://１２７.０.０.１/', 'blocked_address'],
    ['https://0/', 'blocked_address'],
    ['https://[::]/', 'blocked_address'],
    ['https://[::1]/', 'blocked_address'],
    ['https://[::ffff:127.0.0.1]/', 'blocked_address'],
    ['https://[::ffff:a9fe:a9fe]/latest/meta-data/', 'blocked_address'],
    ['https://169.254.169.254/latest/meta-data/', 'blocked_address'],
    ['https://0xa9fea9fe/', 'blocked_address'],
    ['https://[fd00:ec2::254]/', 'blocked_address'],
    ['https://10.0.0.1/', 'blocked_address'],
    ['https://192.168.0.1/', 'blocked_address'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'blocked_address'],
    ['https://localhost/', 'blocked_address'],
    ['https://localhost./', 'blocked_address'],
    ['https://api.localhost/', 'blocked_address'],
  ])('refuses %s in the cloud (%s)', (url, code) => {
    const verdict = checkUrl(url, cloudPolicy);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.code).toBe(code);
      expect(verdict.reason).not.toBe('');
    }
  });

  it('names the refused host in the reason', () => {
    const verdict = checkUrl('https://2130706433/', cloudPolicy);
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringContaining('127.0.0.1') });
  });

  it.each([
    ['http://127.0.0.1:3000/x', '127.0.0.1'],
    ['http://localhost:3000/', 'localhost'],
    ['http://2130706433:3000/', '127.0.0.1'],
    ['http://0x7f.1:3000/', '127.0.0.1'],
    ['http://[::ffff:7f00:1]:3000/', '[::ffff:7f00:1]'],
    ['https://example.com/', 'example.com'],
  ])('accepts %s in local mode', (url, hostname) => {
    const verdict = checkUrl(url, localPolicy);
    expect(verdict.ok && verdict.url.hostname).toBe(hostname);
  });

  it.each(['http://10.0.0.1/', 'http://169.254.169.254/', 'http://0.0.0.0:3000/', 'http://[fe80::1]/'])(
    'refuses %s in local mode too',
    (url) => {
      expect(checkUrl(url, localPolicy)).toMatchObject({ ok: false, code: 'blocked_address' });
    },
  );
});

interface TestServer {
  origin: string;
  port: number;
  connections: number;
  hits: Map<string, number>;
  close(): Promise<void>;
}

async function startServer(handler: http.RequestListener): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    state.hits.set(path, (state.hits.get(path) ?? 0) + 1);
    handler(req, res);
  });
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: TestServer = {
    origin: `http://127.0.0.1:${port}`,
    port,
    connections: 0,
    hits: new Map(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function outboundFailure(promise: Promise<unknown>): Promise<OutboundError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutboundError);
  return error as OutboundError;
}

async function expectFailure(promise: Promise<unknown>, code: OutboundErrorCode): Promise<OutboundError> {
  const error = await outboundFailure(promise);
  expect(error.code).toBe(code);
  return error;
}

const fixedResolver =
  (...addresses: string[]): Resolver =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('openGet and postJson against loopback servers', () => {
  let server: TestServer;
  let other: TestServer;

  beforeAll(async () => {
    other = await startServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
    });
    server = await startServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const redirect = (status: number, location: string) => {
        res.writeHead(status, { location });
        res.end('redirect body that nobody reads');
      };
      switch (path) {
        case '/hello':
          res.end('hello world');
          return;
        case '/headers':
          res.end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
          return;
        case '/to-hello':
          return redirect(302, '/hello');
        case '/see-other':
          return redirect(303, `${server.origin}/hello`);
        case '/to-headers':
          return redirect(307, '/headers');
        case '/to-other-origin':
          return redirect(302, `${other.origin}/headers`);
        case '/to-metadata':
          return redirect(302, 'http://169.254.169.254/latest/meta-data/');
        case '/to-private':
          return redirect(307, 'http://10.0.0.1/');
        case '/to-mapped-metadata':
          return redirect(308, 'http://[::ffff:a9fe:a9fe]/');
        case '/to-decimal-metadata':
          return redirect(301, 'http://2852039166/');
        case '/to-named':
          return redirect(302, `http://internal.example:${server.port}/hello`);
        case '/to-ftp':
          return redirect(302, 'ftp://example.com/');
        case '/loop':
          return redirect(302, '/loop');
        case '/truncated':
          res.writeHead(200, { 'content-length': '1000' });
          res.write('x'.repeat(100));
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        case '/chunked-cut':
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('first part of a chunked body');
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        case '/stall-body':
          res.writeHead(200, { 'content-length': '1000' });
          res.write('x'.repeat(10));
          return;
        case '/stall-head':
          return;
        case '/big':
          res.writeHead(200, { 'content-length': String(1024 * 1024) });
          res.end(Buffer.alloc(1024 * 1024, 0x61));
          return;
        case '/echo': {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            res.writeHead(202, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                method: req.method,
                contentType: req.headers['content-type'],
                contentLength: req.headers['content-length'],
                signature: req.headers['webhook-signature'],
                body: Buffer.concat(chunks).toString('utf8'),
              }),
            );
          });
          return;
        }
        case '/post-big':
          req.resume();
          res.writeHead(200);
          res.end('y'.repeat(200 * 1024));
          return;
        case '/post-fails':
          req.resume();
          res.writeHead(500);
          res.end('internal error');
          return;
        default:
          res.writeHead(404);
          res.end('not found');
      }
    });
  });

  afterAll(async () => {
    closeIdleConnections();
    await Promise.all([server.close(), other.close()]);
  });

  const local = { policy: localPolicy, timeoutMs: 2_000 };

  describe('openGet', () => {
    it('fetches a loopback URL in local mode', async () => {
      const response = await openGet(`${server.origin}/hello`, local);
      expect(response.status).toBe(200);
      expect(response.url).toBe(`${server.origin}/hello`);
      expect((await readAll(response.body)).toString()).toBe('hello world');
    });

    it('reuses a kept-alive connection for the next request', async () => {
      await readAll((await openGet(`${server.origin}/hello`, local)).body);
      const before = server.connections;
      await readAll((await openGet(`${server.origin}/hello`, local)).body);
      await readAll((await openGet(`${server.origin}/hello`, local)).body);
      expect(server.connections).toBe(before);
    });

    it.each([cloudPolicy, publicOnlyHttp])(
      'refuses loopback outside local mode without connecting (%o)',
      async (policy) => {
        const before = server.connections;
        const error = await expectFailure(openGet(`${server.origin}/hello`, { policy }), 'blocked_address');
        expect(error.message).toContain('127.0.0.1');
        expect(server.connections).toBe(before);
      },
    );

    it('refuses a loopback address spelled in decimal', async () => {
      const before = server.connections;
      await expectFailure(openGet(`http://2130706433:${server.port}/hello`, { policy: publicOnlyHttp }), 'blocked_address');
      expect(server.connections).toBe(before);
    });

    it('follows relative and absolute redirects, reporting the final URL', async () => {
      const relative = await openGet(`${server.origin}/to-hello`, local);
      expect(relative.status).toBe(200);
      expect(relative.url).toBe(`${server.origin}/hello`);
      expect((await readAll(relative.body)).toString()).toBe('hello world');

      const seeOther = await openGet(`${server.origin}/see-other`, local);
      expect((await readAll(seeOther.body)).toString()).toBe('hello world');
    });

    it('keeps the authorization header on same-origin redirects and drops it across origins', async () => {
      const headers = { authorization: 'Bearer upstream-secret' };
      const same = await openGet(`${server.origin}/to-headers`, { ...local, headers });
      expect(JSON.parse((await readAll(same.body)).toString())).toEqual({ authorization: 'Bearer upstream-secret' });

      const cross = await openGet(`${server.origin}/to-other-origin`, { ...local, headers });
      expect(cross.url).toBe(`${other.origin}/headers`);
      expect(JSON.parse((await readAll(cross.body)).toString())).toEqual({ authorization: null });
    });

    it.each(['/to-metadata', '/to-private', '/to-mapped-metadata', '/to-decimal-metadata'])(
      'refuses a redirect (%s) to an internal address before connecting to it',
      async (path) => {
        const resolve: Resolver = () => {
          throw new Error('an IP-literal target must not be resolved');
        };
        const error = await expectFailure(openGet(`${server.origin}${path}`, { ...local, resolve }), 'blocked_address');
        expect(error.message).toMatch(/redirected to a refused URL/);
        expect(error.message).not.toContain('redirect body');
      },
    );

    it('refuses a redirect to a scheme other than http(s)', async () => {
      await expectFailure(openGet(`${server.origin}/to-ftp`, local), 'bad_url');
    });

    it('refuses a redirect to a name that resolves to a private address', async () => {
      const hitsBefore = server.hits.get('/hello') ?? 0;
      const error = await expectFailure(
        openGet(`${server.origin}/to-named`, { ...local, resolve: fixedResolver('10.0.0.1') }),
        'blocked_address',
      );
      expect(error.message).toContain('internal.example');
      expect(server.hits.get('/hello') ?? 0).toBe(hitsBefore);
    });

    it('gives up after maxRedirects hops', async () => {
      const before = server.hits.get('/loop') ?? 0;
      await expectFailure(openGet(`${server.origin}/loop`, { ...local, maxRedirects: 3 }), 'too_many_redirects');
      expect((server.hits.get('/loop') ?? 0) - before).toBe(4);
      await expectFailure(openGet(`${server.origin}/to-hello`, { ...local, maxRedirects: 0 }), 'too_many_redirects');
    });

    it('follows at most five redirects by default', async () => {
      const before = server.hits.get('/loop') ?? 0;
      await expectFailure(openGet(`${server.origin}/loop`, local), 'too_many_redirects');
      expect((server.hits.get('/loop') ?? 0) - before).toBe(6);
    });

    it('checks the address a name resolves to at connect time (DNS rebinding)', async () => {
      const url = `http://video.example:${server.port}/hello`;
      // The name passes request validation, which cannot know where it will resolve ...
      expect(checkUrl(url, localPolicy).ok).toBe(true);
      // ... and is refused when, at connect time, it resolves to a private address.
      const before = server.connections;
      const error = await expectFailure(openGet(url, { ...local, resolve: fixedResolver('10.0.0.1') }), 'blocked_address');
      expect(error.message).toContain('video.example');
      expect(error.message).toContain('10.0.0.1');
      expect(server.connections).toBe(before);
    });

    it('refuses a name if any of its addresses is refused', async () => {
      const before = server.connections;
      await expectFailure(
        openGet(`http://video.example:${server.port}/hello`, {
          ...local,
          resolve: fixedResolver('127.0.0.1', '169.254.169.254'),
        }),
        'blocked_address',
      );
      expect(server.connections).toBe(before);
    });

    it('refuses a name resolving to loopback outside local mode, without connecting', async () => {
      const before = server.connections;
      await expectFailure(
        openGet(`http://video.example:${server.port}/hello`, {
          policy: publicOnlyHttp,
          resolve: fixedResolver('127.0.0.1'),
        }),
        'blocked_address',
      );
      expect(server.connections).toBe(before);
    });

    it('connects to the checked address of a name', async () => {
      const response = await openGet(`http://video.example:${server.port}/hello`, {
        ...local,
        resolve: fixedResolver('127.0.0.1'),
      });
      expect(response.status).toBe(200);
      expect((await readAll(response.body)).toString()).toBe('hello world');
    });

    it('reports a name that does not resolve as a network error', async () => {
      await expectFailure(
        openGet(`http://video.example:${server.port}/hello`, { ...local, resolve: fixedResolver() }),
        'network',
      );
    });

    it('reports a refused connection as a network error naming the host', async () => {
      const closed = await startServer(() => {});
      await closed.close();
      const error = await expectFailure(openGet(`${closed.origin}/`, local), 'network');
      expect(error.message).toContain(`127.0.0.1:${closed.port}`);
    });

    it('fails the body stream when the server sends less than its Content-Length', async () => {
      const response = await openGet(`${server.origin}/truncated`, local);
      expect(response.status).toBe(200);
      const error = await expectFailure(readAll(response.body), 'network');
      expect(error.message).toContain('127.0.0.1');
    });

    it('fails the body stream when a chunked response is cut off', async () => {
      const response = await openGet(`${server.origin}/chunked-cut`, local);
      expect(response.headers['transfer-encoding']).toBe('chunked');
      await expectFailure(readAll(response.body), 'network');
    });

    it('fails the body stream when the server stalls mid-body', async () => {
      const response = await openGet(`${server.origin}/stall-body`, { ...local, timeoutMs: 200 });
      const started = Date.now();
      await expectFailure(readAll(response.body), 'timeout');
      expect(Date.now() - started).toBeLessThan(1_500);
    });

    it('times out when the server never answers', async () => {
      await expectFailure(openGet(`${server.origin}/stall-head`, { ...local, timeoutMs: 200 }), 'timeout');
    });

    it('does not count a slow reader as a stalled server', async () => {
      const response = await openGet(`${server.origin}/big`, { ...local, timeoutMs: 150 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await readAll(response.body)).length).toBe(1024 * 1024);
    });

    it('stops on abort, before and during the body', async () => {
      const early = new AbortController();
      const pending = openGet(`${server.origin}/stall-head`, { ...local, signal: early.signal });
      setTimeout(() => early.abort(), 50);
      await expectFailure(pending, 'aborted');

      const late = new AbortController();
      const response = await openGet(`${server.origin}/stall-body`, { ...local, signal: late.signal });
      setTimeout(() => late.abort(), 50);
      await expectFailure(readAll(response.body), 'aborted');

      await expectFailure(openGet(`${server.origin}/hello`, { ...local, signal: AbortSignal.abort() }), 'aborted');
    });

    it('returns error statuses instead of throwing', async () => {
      const response = await openGet(`${server.origin}/missing`, local);
      expect(response.status).toBe(404);
      response.body.destroy();
    });
  });

  describe('postJson', () => {
    it('posts the body with its headers and returns status and response text', async () => {
      const payload = JSON.stringify({ id: 'task_1', status: 'succeeded', note: 'héllo' });
      const result = await postJson(`${server.origin}/echo`, payload, { 'webhook-signature': 'v1,abc' }, local);
      expect(result.status).toBe(202);
      expect(JSON.parse(result.bodyText)).toEqual({
        method: 'POST',
        contentType: 'application/json',
        contentLength: String(Buffer.byteLength(payload)),
        signature: 'v1,abc',
        body: payload,
      });
    });

    it('reads at most 64 KiB of the response, or the configured limit', async () => {
      const capped = await postJson(`${server.origin}/post-big`, '{}', {}, local);
      expect(capped.status).toBe(200);
      expect(capped.bodyText).toBe('y'.repeat(64 * 1024));

      const small = await postJson(`${server.origin}/post-big`, '{}', {}, { ...local, maxResponseBytes: 10 });
      expect(small.bodyText).toBe('y'.repeat(10));
    });

    it('never sends a POST on a pooled connection idle long enough for the server to be closing it', async () => {
      // A server that keeps idle connections 5 s (Node's default) and whose close crosses the
      // next request: a request on a connection idle that long is cut off unanswered.
      const lastUse = new WeakMap<object, number>();
      const closing = await startServer((req, res) => {
        const idle = Date.now() - (lastUse.get(req.socket) ?? Date.now());
        if (idle > 4_500) return void req.socket.destroy();
        req.resume();
        req.on('end', () => {
          res.end('{"ok":true}');
          lastUse.set(req.socket, Date.now());
        });
      });
      try {
        expect((await postJson(`${closing.origin}/jobs`, '{}', {}, local)).status).toBe(200);
        await new Promise((r) => setTimeout(r, 4_700));
        expect((await postJson(`${closing.origin}/jobs`, '{}', {}, local)).status).toBe(200);
        expect(closing.connections).toBe(2);
      } finally {
        await closing.close();
      }
    }, 15_000);

    it('reports a redirect instead of following it', async () => {
      const before = server.hits.get('/hello') ?? 0;
      const result = await postJson(`${server.origin}/to-hello`, '{}', {}, local);
      expect(result.status).toBe(302);
      expect(server.hits.get('/hello') ?? 0).toBe(before);
    });

    it('returns error statuses instead of throwing', async () => {
      const result = await postJson(`${server.origin}/post-fails`, '{}', {}, local);
      expect(result).toMatchObject({ status: 500, bodyText: 'internal error' });
    });

    it('refuses loopback outside local mode without connecting', async () => {
      const before = server.connections;
      await expectFailure(postJson(`${server.origin}/echo`, '{}', {}, { policy: cloudPolicy }), 'blocked_address');
      await expectFailure(
        postJson(`http://hooks.example:${server.port}/echo`, '{}', {}, {
          policy: publicOnlyHttp,
          resolve: fixedResolver('192.168.0.10'),
        }),
        'blocked_address',
      );
      expect(server.connections).toBe(before);
    });

    it('refuses plain http in the cloud', async () => {
      await expectFailure(postJson('http://hooks.example.com/', '{}', {}, { policy: cloudPolicy }), 'bad_url');
    });

    it('times out when the receiver never answers', async () => {
      await expectFailure(postJson(`${server.origin}/stall-head`, '{}', {}, { ...local, timeoutMs: 200 }), 'timeout');
    });
  });
});
