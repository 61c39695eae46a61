import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, TagResourceCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../bin/keys';
import { ApiKeyStore, hashKey, keyId } from '../../lambdas/shared/api-keys';
import { keysHelp, parseKeyArgs } from '../../lambdas/shared/key-admin';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const region = 'us-east-1';

async function startDynalite(path?: string) {
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({ endpoint, region, credentials });
  return {
    endpoint,
    client,
    createTable: (TableName: string) =>
      client.send(
        new CreateTableCommand({
          TableName,
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      ),
    /** What `npm start` does for `npm run keys`: tag its table with an instance nonce. */
    tag: async (TableName: string, instance: string) => {
      const { Table } = await client.send(new DescribeTableCommand({ TableName }));
      await client.send(new TagResourceCommand({ ResourceArn: Table!.TableArn!, Tags: [{ Key: 'local-gateway-instance', Value: instance }] }));
    },
    close: () =>
      new Promise<void>((r) => {
        client.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Run the command as `npm run keys -- ...argv` would, capturing what it prints. */
async function keys(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('reading the command line', () => {
  const usage: [string, string[], RegExp][] = [
    ['no command', [], /name a command/],
    ['an unknown command', ['rotate'], /unknown command "rotate"/],
    ['an unknown option', ['list', '--verbose'], /Unknown option '--verbose'/],
    ['create without --name', ['create'], /create needs --name/],
    ['create with a blank name', ['create', '--name', '   '], /create needs --name/],
    ['create with --name but no value', ['create', '--name'], /argument missing/],
    ['create with a stray word', ['create', '--name', 'ci', 'extra'], /no arguments besides --name/],
    ['a name with a newline', ['create', '--name', 'a\nb'], /control characters/],
    ['a name with a C1 control character', ['create', '--name', 'ci\u009bbuild'], /control characters \(C0, DEL or C1\)/],
    ['a name with DEL', ['create', '--name', 'ci\u007f'], /control characters/],
    ['a name with a line separator', ['create', '--name', 'ci\u2028admin'], /line separators/],
    ['a name with a right-to-left override', ['create', '--name', 'ci\u202Eevitca'], /bidirectional control characters/],
    ['a name with a left-to-right isolate', ['create', '--name', '\u2066ci\u2069'], /bidirectional control characters/],
    ['a name with a right-to-left mark', ['create', '--name', 'ci\u200F'], /bidirectional control characters/],
    ['a very long name', ['create', '--name', 'x'.repeat(101)], /at most 100 characters/],
    ['list with --name', ['list', '--name', 'ci'], /--name is only for create/],
    ['list with a stray word', ['list', 'all'], /list takes no arguments/],
    ['revoke without an id', ['revoke'], /exactly one KEY_ID/],
    ['revoke with two ids', ['revoke', 'aaaaaaaaaaaa', 'bbbbbbbbbbbb'], /exactly one KEY_ID/],
    ['revoke with a key instead of an id', ['revoke', 'vtg_abc'], /not a key id/],
    ['revoke with a full hash', ['revoke', 'a'.repeat(64)], /not a key id/],
    ['--stack and --table together', ['list', '--stack', 'S', '--table', 'T'], /give one/],
    ['--data-dir with an AWS option', ['list', '--data-dir', 'd', '--region', 'eu-west-1'], /--data-dir is for the local gateway/],
    ['--endpoint without --table', ['list', '--endpoint', 'http://127.0.0.1:1'], /--endpoint needs --table/],
    ['an empty --region', ['list', '--region', ''], /--region must not be empty/],
    ['show without an id', ['show'], /show needs exactly one KEY_ID/],
    ['set without a change', ['set', 'abcdef012345'], /set needs --webhook-url URL \(or --no-webhook-url to remove it\)/],
    ['set without an id', ['set', '--webhook-url', 'https://example.com/hooks'], /set needs exactly one KEY_ID/],
    ['set with a webhook URL and its removal', ['set', 'abcdef012345', '--webhook-url', 'https://example.com/h', '--no-webhook-url'], /not both/],
    ['set with a webhook URL of another scheme', ['set', 'abcdef012345', '--webhook-url', 'ftp://example.com/h'], /--webhook-url must be an http\(s\) URL: scheme ftp: is not allowed, only http\(s\) \(got "ftp:\/\/example.com\/h"\)/],
    ['set with a webhook URL that is not a URL', ['set', 'abcdef012345', '--webhook-url', 'example.com/hooks'], /--webhook-url must be an http\(s\) URL: not a valid absolute URL/],
    ['set with a webhook URL carrying credentials', ['set', 'abcdef012345', '--webhook-url', 'https://u:p@example.com/h'], /--webhook-url must be an http\(s\) URL: URL for example.com carries credentials/],
    ['--webhook-url with another command', ['list', '--webhook-url', 'https://example.com/h'], /--webhook-url is only for set/],
    ['--no-webhook-url with another command', ['limits', 'abcdef012345', '--no-webhook-url'], /--no-webhook-url is only for set/],
  ];
  it.each(usage)('%s is a usage error', (_name, argv, message) => {
    expect(() => parseKeyArgs(argv)).toThrow(message);
  });

  it.each(usage)('%s: exit code 1, the reason and the help on stderr, nothing on stdout', async (_name, argv, message) => {
    const run = await keys(...argv);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^keys: /);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain(keysHelp);
  });

  it('with --json a usage error is a JSON error on stderr, without the help', async () => {
    const run = await keys('revoke', 'nope', '--json');
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stderr)).toEqual({ error: { code: 'usage', message: expect.stringMatching(/not a key id/) } });
  });

  it('--help, -h and help print the help and succeed', async () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['create', '--help']]) {
      const run = await keys(...argv);
      expect(run).toEqual({ code: 0, stdout: keysHelp, stderr: '' });
    }
  });

  it('targets the local gateway in .data unless told otherwise', () => {
    expect(parseKeyArgs(['list'])).toEqual({ command: { action: 'list' }, target: { kind: 'local', dataDir: '.data' }, json: false });
    expect(parseKeyArgs(['list', '--data-dir', '/srv/vtg', '--json']).target).toEqual({ kind: 'local', dataDir: '/srv/vtg' });
  });

  it('any AWS option targets a deployed stack, VideoTaskGateway unless named', () => {
    expect(parseKeyArgs(['list', '--aws']).target).toEqual({ kind: 'aws', stack: 'VideoTaskGateway', region: undefined });
    expect(parseKeyArgs(['list', '--region', 'eu-west-1']).target).toEqual({ kind: 'aws', stack: 'VideoTaskGateway', region: 'eu-west-1' });
    expect(parseKeyArgs(['list', '--stack', 'Other']).target).toMatchObject({ kind: 'aws', stack: 'Other' });
    expect(parseKeyArgs(['list', '--stage', 'dev']).target).toMatchObject({ kind: 'aws', stack: 'VideoTaskGateway-dev' });
    expect(parseKeyArgs(['list', '--table', 'T', '--endpoint', 'http://127.0.0.1:8000']).target).toEqual({
      kind: 'aws',
      table: 'T',
      region: undefined,
      endpoint: 'http://127.0.0.1:8000',
    });
  });

  it('takes the key id in either case and the name trimmed', () => {
    expect(parseKeyArgs(['revoke', 'ABCDEF012345']).command).toEqual({ action: 'revoke', id: 'abcdef012345' });
    expect(parseKeyArgs(['create', '--name', '  billing service ']).command).toEqual({ action: 'create', name: 'billing service', admin: false });
  });

  it('set takes a webhook URL, and removes it with --no-webhook-url or an empty --webhook-url', () => {
    expect(parseKeyArgs(['set', 'ABCDEF012345', '--webhook-url', ' https://example.com/hooks/video?k=1 ']).command).toEqual({
      action: 'set',
      id: 'abcdef012345',
      webhookUrl: 'https://example.com/hooks/video?k=1',
    });
    for (const removal of [['--no-webhook-url'], ['--webhook-url', ''], ['--webhook-url=']])
      expect(parseKeyArgs(['set', 'abcdef012345', ...removal]).command).toEqual({ action: 'set', id: 'abcdef012345', webhookUrl: null });
  });
});

const defaults = { concurrent: 'default', rpm: 'default', seconds_per_day: 'default', seconds_per_month: 'default' };

describe('create, list and revoke against a DynamoDB table', () => {
  const TABLE = 'keys-cli-test';
  let db: Awaited<ReturnType<typeof startDynalite>>;
  let table: string[];
  /** A store that never caches, as a gateway with KEY_CACHE_SECONDS=0 sees the table. */
  let verifier: ApiKeyStore;

  beforeAll(async () => {
    // The deployed path uses the AWS SDK's default credential chain; here it finds these.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: region });
    delete process.env.AWS_PROFILE;
    db = await startDynalite();
    await db.createTable(TABLE);
    table = ['--table', TABLE, '--endpoint', db.endpoint];
    verifier = new ApiKeyStore(DynamoDBDocumentClient.from(db.client), TABLE, 0);
  });
  afterAll(() => db?.close());

  const items = async () => (await DynamoDBDocumentClient.from(db.client).send(new ScanCommand({ TableName: TABLE }))).Items ?? [];

  it('lists no keys in an empty table', async () => {
    const run = await keys('list', ...table);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^No API keys in table keys-cli-test/);
    expect(JSON.parse((await keys('list', '--json', ...table)).stdout)).toMatchObject({ keys: [] });
  });

  let first: { key: string; secret: string; id: string };
  let second: { key: string; secret: string; id: string };

  it('create prints the new key and its webhook secret once, with a warning, and stores only the hash', async () => {
    const run = await keys('create', '--name', 'billing service', ...table);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const key = /API key:\s+(vtg_[\w-]{43})\n/.exec(run.stdout)?.[1];
    const secret = /Webhook secret:\s+(whsec_[A-Za-z0-9+/=]{44})\n/.exec(run.stdout)?.[1];
    expect(key).toBeDefined();
    expect(secret).toBeDefined();
    first = { key: key!, secret: secret!, id: keyId(hashKey(key!)) };
    expect(run.stdout).toContain(`Created API key "billing service" (id ${first.id})`);
    expect(run.stdout).toMatch(/WARNING: the API key and webhook secret are shown only this once/);

    const stored = await items();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ pk: `KEY#${hashKey(key!)}`, key_hash: hashKey(key!), name: 'billing service', webhook_secret: secret });
    expect(JSON.stringify(stored)).not.toContain(key);
    expect(await verifier.verify(key!)).toMatchObject({ name: 'billing service', webhook_secret: secret });
  });

  it('create --json gives the same facts to a script', async () => {
    const run = await keys('create', '--name', 'ci', '--json', ...table);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toEqual({
      id: keyId(hashKey(out.api_key)),
      name: 'ci',
      status: 'active',
      admin: false,
      limits: defaults,
      webhook_url: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      revoked_at: null,
      api_key: expect.stringMatching(/^vtg_[\w-]{43}$/),
      webhook_secret: expect.stringMatching(/^whsec_/),
      target: expect.stringContaining('table keys-cli-test'),
      warning: expect.stringContaining('shown only this once'),
    });
    second = { key: out.api_key, secret: out.webhook_secret, id: out.id };
    expect(await verifier.verify(second.key)).toMatchObject({ name: 'ci' });
  });

  it('two keys are different, and so are their secrets', () => {
    expect(second.key).not.toBe(first.key);
    expect(second.secret).not.toBe(first.secret);
  });

  it('list shows ids, names and status, never a key, a secret or more of a hash than the id', async () => {
    for (const argv of [['list', ...table], ['list', '--json', ...table]]) {
      const run = await keys(...argv);
      expect(run.code).toBe(0);
      for (const k of [first, second]) {
        expect(run.stdout).toContain(k.id);
        expect(run.stdout).not.toContain(k.key);
        expect(run.stdout).not.toContain(k.secret);
        expect(run.stdout).not.toContain(hashKey(k.key).slice(0, 13));
      }
      expect(run.stdout).not.toMatch(/vtg_|whsec_|[0-9a-f]{13}/);
    }
    const human = (await keys('list', ...table)).stdout;
    expect(human.split('\n')[0]).toMatch(/^ID\s+NAME\s+STATUS\s+ROLE\s+LIMITS\s+CREATED\s+REVOKED\s+WEBHOOK$/);
    expect(human).toMatch(new RegExp(`^${first.id}\\s+billing service\\s+active\\s+client\\s+default\\s+\\d{4}-`, 'm'));
    expect(human).toContain('2 keys (2 active)');
    const listed = JSON.parse((await keys('list', '--json', ...table)).stdout).keys;
    expect(listed).toEqual([
      { id: first.id, name: 'billing service', status: 'active', admin: false, limits: defaults, webhook_url: null, created_at: expect.any(String), revoked_at: null },
      { id: second.id, name: 'ci', status: 'active', admin: false, limits: defaults, webhook_url: null, created_at: expect.any(String), revoked_at: null },
    ]);
  });

  it('limits sets a key\'s own limits, none lifts one, default gives it back to the operator; list shows them', async () => {
    const set = await keys('limits', second.id, '--concurrent', '5', '--rpm', '60', '--seconds-per-day', 'none', ...table);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain(`Limits of key ${second.id} ("ci")`);
    expect(set.stdout).toMatch(/concurrent\s+5\n\s+rpm\s+60\n\s+seconds_per_day\s+none\n\s+seconds_per_month\s+default/);
    expect((await verifier.byHash(hashKey(second.key)))!.limits).toEqual({ concurrent: 5, rpm: 60, seconds_per_day: null });
    const back = JSON.parse((await keys('limits', second.id, '--rpm', 'default', '--seconds-per-month', '3600', '--json', ...table)).stdout);
    expect(back.limits).toEqual({ concurrent: 5, rpm: 'default', seconds_per_day: null, seconds_per_month: 3600 });
    const shown = await keys('limits', second.id, ...table);
    expect(shown.stdout).not.toContain(', now');
    expect(shown.stdout).toMatch(/seconds_per_month\s+3600/);
    expect((await keys('list', ...table)).stdout).toMatch(new RegExp(`^${second.id}\\s+ci\\s+active\\s+client\\s+concurrent=5 seconds_per_day=none seconds_per_month=3600\\s`, 'm'));
    for (const [argv, message] of [
      [['limits', second.id, '--rpm', '0'], '--rpm takes a whole number of at least 1, none or default (got "0")'],
      [['limits', second.id, '--concurrent', 'lots'], '--concurrent takes a whole number of at least 1, none or default (got "lots")'],
      [['limits'], 'limits needs exactly one KEY_ID'],
      [['list', '--rpm', '5'], '--rpm is only for limits'],
    ] as const) {
      const run = await keys(...argv, ...table);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(message);
    }
    const missing = await keys('limits', 'ffffffffffff', '--rpm', '5', ...table);
    expect(missing.code).toBe(2);
  });

  it('set --webhook-url gives a key its default webhook, which list and show show, and --no-webhook-url removes it', async () => {
    const set = await keys('set', second.id, '--webhook-url', 'https://hooks.example.com/video?app=ci', ...table);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(set.stdout).toContain(`Key ${second.id} ("ci") sends the webhooks of tasks created without a callback_url to https://hooks.example.com/video?app=ci.`);
    expect(set.stdout).toContain('Tasks keep the URL they were created with');
    expect((await verifier.byHash(hashKey(second.key)))!.webhook_url).toBe('https://hooks.example.com/video?app=ci');
    expect((await keys('list', ...table)).stdout).toMatch(new RegExp(`^${second.id}\\s+ci\\s.*\\shttps://hooks\\.example\\.com/video\\?app=ci$`, 'm'));
    expect(JSON.parse((await keys('list', '--json', ...table)).stdout).keys[1]).toMatchObject({ id: second.id, webhook_url: 'https://hooks.example.com/video?app=ci' });

    const shown = await keys('show', second.id, ...table);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^Key [0-9a-f]{12} in table keys-cli-test/);
    expect(shown.stdout).toMatch(/\n  name\s+ci\n/);
    expect(shown.stdout).toMatch(/\n  concurrent\s+5\n/);
    expect(shown.stdout).toMatch(/\n  webhook_url\s+https:\/\/hooks\.example\.com\/video\?app=ci\n/);
    expect(shown.stdout).not.toMatch(/vtg_|whsec_/);
    const shownJson = JSON.parse((await keys('show', second.id, '--json', ...table)).stdout);
    expect(shownJson).toEqual({ ...JSON.parse((await keys('list', '--json', ...table)).stdout).keys[1], target: expect.stringContaining('keys-cli-test') });

    const removed = await keys('set', second.id, '--no-webhook-url', '--json', ...table);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ id: second.id, webhook_url: null });
    expect((await verifier.byHash(hashKey(second.key)))!.webhook_url).toBeUndefined();
    expect((await keys('show', second.id, ...table)).stdout).toMatch(/webhook_url\s+none \(only tasks' own callback_url\)/);
    const again = await keys('set', second.id, '--webhook-url', '', ...table);
    expect(again.stdout).toContain(`Key ${second.id} ("ci") has no default webhook now`);
  });

  it('set refuses a webhook URL that a deployed gateway would never send to, and an unknown key', async () => {
    for (const [url, reason] of [
      ['http://10.1.2.3/hooks', '10.1.2.3 is not a public address (private)'],
      ['http://127.0.0.1:8080/hooks', '127.0.0.1 is not a public address (loopback)'],
      ['http://localhost/hooks', 'localhost is a loopback name'],
      ['http://169.254.169.254/latest', '169.254.169.254 is not a public address (link-local)'],
    ] as const) {
      const run = await keys('set', second.id, '--webhook-url', url, ...table);
      expect(run.code, url).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr, url).toContain(`keys: --webhook-url: ${reason}; table keys-cli-test`);
      expect(run.stderr, url).toContain('sends webhooks only to public hosts');
    }
    expect((await verifier.byHash(hashKey(second.key)))!.webhook_url).toBeUndefined();
    const missing = await keys('set', 'ffffffffffff', '--webhook-url', 'https://hooks.example.com/x', '--json', ...table);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stderr)).toEqual({ error: { code: 'not_found', message: expect.stringContaining('no key with id ffffffffffff') } });
    expect((await keys('show', 'ffffffffffff', ...table)).code).toBe(2);
  });

  it('revoke by id: the key no longer verifies, the other one still does', async () => {
    const run = await keys('revoke', first.id, ...table);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Revoked key ${first.id} ("billing service")`);
    expect(run.stdout).toContain('KEY_CACHE_SECONDS');
    expect(await verifier.verify(first.key)).toBeUndefined();
    expect(await verifier.verify(second.key)).toMatchObject({ name: 'ci' });
    const listed = JSON.parse((await keys('list', '--json', ...table)).stdout).keys;
    expect(listed[0]).toMatchObject({ id: first.id, status: 'revoked', revoked_at: expect.stringMatching(/^\d{4}-/) });
    expect((await keys('list', ...table)).stdout).toContain('2 keys (1 active)');
  });

  it('revoking again changes nothing and says so', async () => {
    const before = (await verifier.byHash(hashKey(first.key)))!.revoked_at;
    const run = await keys('revoke', first.id.toUpperCase(), '--json', ...table);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ id: first.id, status: 'revoked', already_revoked: true, revoked_at: new Date(before!).toISOString() });
    expect((await verifier.byHash(hashKey(first.key)))!.revoked_at).toBe(before);
  });

  it('an unknown key id is "not found": exit code 2', async () => {
    const run = await keys('revoke', '000000000000', ...table);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^keys: no key with id 000000000000/);
    expect(run.stderr).not.toContain('Usage:');
    const asJson = await keys('revoke', '000000000000', '--json', ...table);
    expect(asJson.code).toBe(2);
    expect(JSON.parse(asJson.stderr)).toEqual({ error: { code: 'not_found', message: expect.stringContaining('000000000000') } });
  });

  it('a table that does not exist is "not found" too', async () => {
    const run = await keys('list', '--table', 'no-such-table', '--endpoint', db.endpoint);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/table does not exist/);
  });

  it('a DynamoDB that does not answer is exit code 3', async () => {
    const run = await keys('list', '--table', TABLE, '--endpoint', 'http://127.0.0.1:1', '--json');
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stderr).error.code).toBe('failed');
  });
});

describe('the local gateway as the target', () => {
  const LOCAL_TABLE = 'video-task-gateway';
  let dataDir: string;
  let running: Awaited<ReturnType<typeof startDynalite>> | undefined;
  let made: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'vtg-keys-'));
  });
  afterAll(async () => {
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const endpointsFile = () => join(dataDir, 'endpoints.json');
  const endpoints = (pid: number, instance: string, dynamodb: string) => ({
    pid,
    instance,
    url: 'http://127.0.0.1:3000',
    tableName: LOCAL_TABLE,
    bucketName: 'video-task-gateway-videos',
    dynamodb,
    s3: 'http://127.0.0.1:1',
    sqs: 'http://127.0.0.1:1',
  });

  it('a data directory the gateway never ran in is "not found"', async () => {
    const run = await keys('list', '--data-dir', join(dataDir, 'nowhere'));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no local gateway data in .*nowhere: run `npm start` once first/);
  });

  it('while the gateway runs, the command uses the DynamoDB it names in endpoints.json', async () => {
    // Stands in for `npm start`: its dynalite holds the data directory open.
    running = await startDynalite(join(dataDir, 'dynamodb'));
    await running.createTable(LOCAL_TABLE);
    await running.tag(LOCAL_TABLE, 'instance-of-the-running-one');
    writeFileSync(endpointsFile(), JSON.stringify(endpoints(process.pid, 'instance-of-the-running-one', running.endpoint)));

    const run = await keys('create', '--name', 'local', '--data-dir', dataDir, '--json');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    made = out.id;
    expect(out.target).toBe(`the running local gateway at http://127.0.0.1:3000 (data in ${dataDir})`);
    const store = new ApiKeyStore(DynamoDBDocumentClient.from(running.client), LOCAL_TABLE, 0);
    expect(await store.verify(out.api_key)).toMatchObject({ name: 'local' });
  });

  it('a process holding the data open without endpoints.json is reported, not crashed into', async () => {
    unlinkSync(endpointsFile());
    const run = await keys('list', '--data-dir', dataDir);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/is open in another process \(a running `npm start`\?\)/);
  });

  it('when the gateway is stopped (even leaving a stale endpoints.json), the command opens the data itself', async () => {
    const stale = running!.endpoint;
    await running!.close();
    running = undefined;
    writeFileSync(endpointsFile(), JSON.stringify(endpoints(2 ** 22 + 1, 'instance-of-the-running-one', stale)));

    const list = await keys('list', '--data-dir', dataDir);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${made}\\s+local\\s+active`, 'm'));
    expect(list.stdout).toContain(`the local gateway's table (data in ${dataDir}; gateway not running)`);

    const revoke = await keys('revoke', made, '--data-dir', dataDir);
    expect(revoke.code).toBe(0);
    // The gateway's own key stays revoked; the command says what the next start does.
    expect(revoke.stdout).toContain('This is the key `npm start` prints. It stays revoked: the next `npm start` makes a new local key');

    // The command let go of the data: another process (the gateway) can open it again.
    running = await startDynalite(join(dataDir, 'dynamodb'));
    const store = new ApiKeyStore(DynamoDBDocumentClient.from(running.client), LOCAL_TABLE, 0);
    expect((await store.list()).map((r) => [keyId(r.key_hash), r.revoked_at !== undefined])).toEqual([[made, true]]);
  });

  it('an endpoints.json whose port now belongs to another gateway is not used: the key goes into this data directory', async () => {
    await running?.close();
    running = undefined;
    const other = mkdtempSync(join(tmpdir(), 'vtg-keys-other-'));
    const otherGateway = await startDynalite(join(other, 'dynamodb'));
    try {
      await otherGateway.createTable(LOCAL_TABLE);
      await otherGateway.tag(LOCAL_TABLE, 'instance-of-the-other-gateway');
      const otherStore = new ApiKeyStore(DynamoDBDocumentClient.from(otherGateway.client), LOCAL_TABLE, 0);
      // A live pid (this process) and a live port, but the table there is the other gateway's.
      for (const pid of [process.pid, 2 ** 22 + 1]) {
        writeFileSync(endpointsFile(), JSON.stringify(endpoints(pid, 'instance-of-the-running-one', otherGateway.endpoint)));
        const run = await keys('create', '--name', `ci-${pid}`, '--data-dir', dataDir, '--json');
        expect(run.code).toBe(0);
        expect(JSON.parse(run.stdout).target).toBe(`the local gateway's table (data in ${dataDir}; gateway not running)`);
      }
      expect(await otherStore.list()).toEqual([]);
    } finally {
      await otherGateway.close();
      rmSync(other, { recursive: true, force: true });
    }
    running = await startDynalite(join(dataDir, 'dynamodb'));
    const store = new ApiKeyStore(DynamoDBDocumentClient.from(running.client), LOCAL_TABLE, 0);
    expect((await store.list()).map((r) => r.name).sort()).toEqual([`ci-${process.pid}`, 'ci-4194305', 'local'].sort());
  });

  it('while another process holds the data directory, the command says who and touches nothing', async () => {
    await running?.close();
    running = undefined;
    writeFileSync(join(dataDir, 'gateway.lock'), JSON.stringify({ pid: process.ppid, by: 'npm start', since: '2026-01-01T00:00:00.000Z' }));
    try {
      const run = await keys('list', '--data-dir', dataDir);
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`is in use by npm start (pid ${process.ppid}, since 2026-01-01T00:00:00.000Z)`);
    } finally {
      unlinkSync(join(dataDir, 'gateway.lock'));
    }
  });

  it('local data without the gateway table is "not found"', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'vtg-keys-empty-'));
    try {
      const db = await startDynalite(join(empty, 'dynamodb'));
      await db.createTable('something-else');
      await db.close();
      const run = await keys('list', '--data-dir', empty);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/no table video-task-gateway in the local data/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('a deployed stack as the target', () => {
  // Mocked only while these tests run: the ones above use the real clients.
  const mock = () => ({ cfn: mockClient(CloudFormationClient), ddb: mockClient(DynamoDBDocumentClient) });
  let cfn: ReturnType<typeof mock>['cfn'];
  let ddb: ReturnType<typeof mock>['ddb'];

  beforeAll(() => {
    ({ cfn, ddb } = mock());
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: region });
  });
  afterAll(() => {
    cfn?.restore();
    ddb?.restore();
  });

  it("finds the table in the stack's TableName output and writes the key there", async () => {
    cfn.reset();
    ddb.reset();
    cfn.on(DescribeStacksCommand, { StackName: 'VideoTaskGateway-dev' }).resolves({
      Stacks: [
        {
          StackName: 'VideoTaskGateway-dev',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Outputs: [
            { OutputKey: 'ApiUrl', OutputValue: 'https://example.execute-api.eu-west-1.amazonaws.com/' },
            { OutputKey: 'TableName', OutputValue: 'VideoTaskGateway-dev-StorageTable-ABC' },
          ],
        },
      ],
    });
    ddb.on(PutCommand).resolves({});
    const run = await keys('create', '--name', 'prod client', '--stage', 'dev', '--region', 'eu-west-1', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).target).toBe('table VideoTaskGateway-dev-StorageTable-ABC of stack VideoTaskGateway-dev (eu-west-1)');
    const put = ddb.commandCalls(PutCommand)[0]!.args[0].input;
    expect(put.TableName).toBe('VideoTaskGateway-dev-StorageTable-ABC');
    expect(put.Item).toMatchObject({ pk: `KEY#${hashKey(JSON.parse(run.stdout).api_key)}`, name: 'prod client' });
  });

  it('a stack that does not exist is "not found"', async () => {
    cfn.reset();
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    const run = await keys('list', '--stack', 'Nope', '--region', 'eu-west-1');
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('keys: stack Nope does not exist in eu-west-1\n');
  });

  it('a stack without a TableName output (still being created, or another stack) is "not found"', async () => {
    cfn.reset();
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'VideoTaskGateway', StackStatus: 'CREATE_IN_PROGRESS', CreationTime: new Date(), Outputs: [] }],
    });
    const run = await keys('list', '--aws', '--json');
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stderr).error.message).toBe('stack VideoTaskGateway has no TableName output (status CREATE_IN_PROGRESS)');
  });
});
