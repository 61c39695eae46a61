import { readFileSync } from 'node:fs';
import { Agent, METHODS, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../lambdas/shared/api-keys';
import { callbackToken } from '../../lambdas/shared/callback-token';
import { models } from '../../lambdas/shared/contracts';
import { errorTypes } from '../../lambdas/shared/contracts/api';
import { isTaskId } from '../../lambdas/shared/ids';
import { tableSchema } from '../../lambdas/shared/table-schema';
import { localCredentials } from '../../local/embedded-aws';
import { startHarness, type Harness } from './helpers';

/**
 * Bad input never becomes a 5xx (issue 3, point 7). fast-check throws generated bodies,
 * headers, paths, methods, query strings and upstream callbacks at the real local gateway
 * over HTTP. Every answer must be the API's JSON (a success or `{"error": {code, message, param?, type}}`),
 * below 500, with no trace of a stack or a source path, and a rejected request must leave
 * the table as it was.
 *
 * Runs are bounded by count and by time. A failure names the seed; `FUZZ_SEED=<n>` replays it.
 */

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

let h: Harness;
let db: DynamoDBDocumentClient;
let owner: string;
let callbackSecret: string;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** Tasks made before the fuzzing starts, targets for callbacks and task routes. */
const fixtures: { id: string; upstreamId: string }[] = [];
/** Every task id the gateway answered 200 for (or recorded while refusing upstream), and the keys that made them. */
const accepted = new Set<string>();
const acceptedIdempotencyKeys = new Set<string>();
let keyItemsAtStart = 0;
const runs: Record<string, number> = {};
/** Answers per property and status, printed at the end to show what the generators reached. */
const statuses: Record<string, Record<number, number>> = {};

beforeAll(async () => {
  // Renders never finish (and the half-way progress callback is 5 minutes away), so the
  // table changes only through the requests made here.
  h = await startHarness({ renderMs: 600_000, queueTimeScale: 0.01 });
  h.gw.upstream.setFaults({ render: 'stall' });
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: h.gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials }),
  );
  owner = hashKey(h.gw.apiKey);
  callbackSecret = (JSON.parse(readFileSync(join(h.dataDir, 'secrets.json'), 'utf8')) as { callbackSecret: string }).callbackSecret;
  for (const prompt of ['fixture one', 'fixture two', 'fixture three']) {
    const res = await h.submit({ model: 'sora-2', prompt });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    accepted.add(id);
    const upstream = [...h.gw.upstream.tasks.values()].find((t) => t.prompt === prompt)!;
    fixtures.push({ id, upstreamId: upstream.id });
  }
  keyItemsAtStart = (await scanTable()).filter((i) => String(i.pk).startsWith('KEY#')).length;
}, 60_000);

afterAll(async () => {
  console.info(`fuzz seed ${seed}; requests per property: ${JSON.stringify(runs)}; answers: ${JSON.stringify(statuses)}`);
  agent.destroy();
  db?.destroy();
  await h?.close();
});

// ---- sending ------------------------------------------------------------------------------

interface Probe {
  method: string;
  /** The raw request target, sent as is (no URL normalisation on the client side). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

function send(probe: Probe): Promise<Answer> {
  const { hostname, port } = new URL(h.gw.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method: probe.method,
        path: probe.path,
        // An explicit length: a GET's body would otherwise be read as the next request on the connection.
        headers: probe.body === undefined ? probe.headers : { ...probe.headers, 'content-length': String(probe.body.length) },
        agent,
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within 15 s to ${probe.method} ${probe.path.slice(0, 200)}`)));
    req.on('error', reject);
    req.end(probe.body);
  });
}

const describeProbe = (p: Probe) =>
  `${p.method} ${p.path.length > 300 ? `${p.path.slice(0, 300)}… (${p.path.length} chars)` : p.path}\n` +
  `headers ${JSON.stringify(p.headers).slice(0, 600)}\n` +
  `body ${p.body === undefined ? '(none)' : JSON.stringify(p.body.toString('utf8').slice(0, 600))}${(p.body?.length ?? 0) > 600 ? ` … (${p.body!.length} bytes)` : ''}`;

/** Signs that an answer leaks internals: stack frames, error class names, source paths. */
const leaks: [string, RegExp][] = [
  ['a stack frame', /\bat\s+\S+\s+\(|\n\s*at\s|\bat\s+(file:\/\/|\/|node:)/],
  ['an error class name', /\b[A-Z]?[A-Za-z]*Error:/],
  ['a source path', /\/work\/|node_modules|file:\/\/|\.[cm]?[jt]s:\d+/],
];

/** Fields that echo what a client sent (an earlier fuzzed prompt may well read "node_modules"). */
const clientFields = new Set(['prompt', 'image_urls', 'characters', 'callback_url']);

/** A successful answer's text without the client's own words, which may look like anything. */
function gatewayText(text: string): string {
  const strip = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(strip)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).filter(([k]) => !clientFields.has(k)).map(([k, v]) => [k, strip(v)]))
        : value;
  try {
    return JSON.stringify(strip(JSON.parse(text)));
  } catch {
    return text;
  }
}

/** The API's contract for any answer: below 500, JSON, an error in the one error shape, nothing internal. */
function checkAnswer(probe: Probe, answer: Answer): unknown {
  const where = () => `\n${describeProbe(probe)}\n=> ${answer.status} ${answer.text.slice(0, 600)}`;
  if (answer.status >= 500 || answer.status < 200) throw new Error(`answered ${answer.status}${where()}`);
  const own = answer.status < 300 ? gatewayText(answer.text) : answer.text;
  for (const [what, pattern] of leaks) if (pattern.test(own)) throw new Error(`answer carries ${what}${where()}`);
  if (probe.method === 'HEAD') return undefined;
  if (answer.status === 302) {
    if (!answer.headers.location) throw new Error(`redirect without a location${where()}`);
    return undefined;
  }
  if (!/^application\/json\b/i.test(String(answer.headers['content-type'] ?? '')))
    throw new Error(`answer is not declared JSON (${answer.headers['content-type']})${where()}`);
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    throw new Error(`answer is not JSON${where()}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`answer is not a JSON object${where()}`);
  if (answer.status >= 400) {
    const error = (body as { error?: Record<string, unknown> }).error;
    const wellFormed =
      Object.keys(body).length === 1 &&
      typeof error === 'object' &&
      error !== null &&
      typeof error.code === 'string' &&
      error.code !== '' &&
      typeof error.message === 'string' &&
      (error.param === undefined || typeof error.param === 'string') &&
      (errorTypes as readonly unknown[]).includes(error.type) &&
      Object.keys(error).every((k) => ['code', 'message', 'param', 'type'].includes(k));
    if (!wellFormed) throw new Error(`error answer is not {"error": {code, message, param?, type}}${where()}`);
  }
  return body;
}

// ---- the table ----------------------------------------------------------------------------

/** The caller's newest tasks, newest first (task ids sort by creation time). */
async function newestTaskIds(limit: number): Promise<string[]> {
  const { byOwner } = tableSchema;
  const { Items = [] } = await db.send(
    new QueryCommand({
      TableName: h.gw.tableName,
      IndexName: byOwner.indexName,
      KeyConditionExpression: '#o = :o',
      ExpressionAttributeNames: { '#o': byOwner.partitionKey },
      ExpressionAttributeValues: { ':o': owner },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return Items.map((i) => String(i.id));
}

async function item(pk: string): Promise<Record<string, unknown> | undefined> {
  return (await db.send(new GetCommand({ TableName: h.gw.tableName, Key: { pk }, ConsistentRead: true }))).Item;
}

async function scanTable(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: h.gw.tableName, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Node trims optional whitespace around header values; the gateway sees the trimmed value. */
const trimHeader = (v: string) => v.replace(/^[\t ]+|[\t ]+$/g, '');

interface Shot {
  probe: Probe;
  /** A task the request may touch (a callback's task), checked for changes. */
  target?: string;
}

/** The caller's newest task after the last batch; nothing but the fuzzed requests makes tasks. */
let newestSeen: string | undefined;

/**
 * One batch of requests, sent together, with the write check around it. Only accepted
 * submits may add tasks (exactly the ids they answered) and claim an Idempotency-Key; a
 * task or a claim may change only when some request of the batch touching it succeeded.
 */
async function exchange(kind: string, shots: Shot[]): Promise<void> {
  runs[kind] = (runs[kind] ?? 0) + shots.length;
  const claimPk = (s: Shot) => {
    const key = s.probe.headers['idempotency-key'];
    return key === undefined ? undefined : `IDEM#${owner}#${trimHeader(key)}`;
  };
  const watched = [...new Set(shots.flatMap((s) => [claimPk(s), s.target && `TASK#${s.target}`]).filter((pk): pk is string => !!pk))];
  const before = new Map(await Promise.all(watched.map(async (pk) => [pk, await item(pk)] as const)));

  const answers = await Promise.all(shots.map((s) => send(s.probe)));
  for (const a of answers) (statuses[kind] ??= {})[a.status] = (statuses[kind]![a.status] ?? 0) + 1;
  const bodies = shots.map((s, i) => checkAnswer(s.probe, answers[i]!));
  const where = (only?: number) =>
    shots
      .map((s, i) => (only === undefined || only === i ? `\n${describeProbe(s.probe)}\n=> ${answers[i]!.status} ${answers[i]!.text.slice(0, 400)}` : ''))
      .join('');

  // Accepted submits: a 200 `{id}`, or the one recorded refusal (the upstream said no: the task is failed with its reason).
  const fresh = new Set<string>();
  const succeeded = new Set<string>(); // watched items some successful request of the batch may have changed
  shots.forEach((s, i) => {
    const answer = answers[i]!;
    const body = bodies[i] as Record<string, unknown> | undefined;
    const submitted = answer.status === 200 && body !== undefined && Object.keys(body).length === 1 && typeof body.id === 'string';
    const refusedUpstream = answer.status === 400 && typeof answer.headers['x-task-id'] === 'string';
    if (submitted || refusedUpstream) {
      const id = submitted ? String(body!.id) : String(answer.headers['x-task-id']);
      if (!isTaskId(id)) throw new Error(`submit answered an id that is not a task id: ${id}${where(i)}`);
      if (!accepted.has(id)) fresh.add(id);
      const key = s.probe.headers['idempotency-key'];
      if (key !== undefined) acceptedIdempotencyKeys.add(trimHeader(key));
    }
    if (answer.status < 400 || refusedUpstream) {
      const pk = claimPk(s);
      if (pk) succeeded.add(pk);
      if (s.target) succeeded.add(`TASK#${s.target}`);
    }
  });

  const newest = await newestTaskIds(fresh.size + 1);
  const made = newest.slice(0, newest.indexOf(newestSeen ?? '') === -1 ? newest.length : newest.indexOf(newestSeen ?? ''));
  // Moved on before judging, so that the runs of a shrink are judged on their own writes.
  newestSeen = newest[0] ?? newestSeen;
  fresh.forEach((id) => accepted.add(id));
  const stray = made.filter((id) => !fresh.has(id));
  if (stray.length) throw new Error(`task ${stray.join(', ')} was written, but no request answered its id${where()}`);
  const missing = [...fresh].filter((id) => !made.includes(id));
  if (missing.length) throw new Error(`submit answered ${missing.join(', ')}, but no such new task is in the table${where()}`);

  for (const pk of watched) {
    if (succeeded.has(pk)) continue;
    const was = before.get(pk);
    const now = await item(pk);
    // An archiving task is worked on in the background (the fuzz may have handed it a video URL).
    if (was?.state === 'archiving' || now?.state === 'archiving') continue;
    if (!isDeepStrictEqual(was, now)) throw new Error(`${pk} changed, yet every request touching it was refused${where()}`);
  }
}

/** Requests go in batches of up to four at once: more requests in the time, and some races for free. */
const batch = <T>(arbitrary: fc.Arbitrary<T>) => fc.array(arbitrary, { minLength: 1, maxLength: 4 });

async function fuzz<T>(kind: string, arbitrary: fc.Arbitrary<T>, toShot: (value: T) => Shot, numRuns: number, timeMs: number) {
  newestSeen = (await newestTaskIds(1))[0];
  // The time limit abandons the batch in flight, whose requests still reach the gateway:
  // they are waited for here, so that their writes are not taken for the next property's.
  const inFlight = new Set<Promise<void>>();
  const run = (values: T[]) => {
    const done = exchange(kind, values.map(toShot));
    inFlight.add(done);
    return done.finally(() => inFlight.delete(done));
  };
  try {
    await fc.assert(fc.asyncProperty(batch(arbitrary), run), { numRuns, seed, plugins: [fc.interruptAfterTimeLimit(timeMs)] });
  } catch (error) {
    (error as Error).message = `fuzz of ${kind} failed; replay with FUZZ_SEED=${seed}\n${(error as Error).message}`;
    throw error;
  } finally {
    await Promise.allSettled([...inFlight]);
  }
  // Bounded by time, but a run that made next to no requests proves nothing.
  expect(runs[kind] ?? 0).toBeGreaterThanOrEqual(Math.min(numRuns, 100));
}

// ---- generators ---------------------------------------------------------------------------

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String.fromCharCode(from + i));

/** What Node lets a client put in a header value: tab, printable ASCII and Latin-1. */
const headerChar = fc.constantFrom('\t', ...range(0x20, 0x7e), ...range(0x80, 0xff));
const headerText = (minLength: number, maxLength: number) => fc.string({ unit: headerChar, minLength, maxLength });

/** What may stand raw in a request target's path: printable ASCII but `?`, `#` and `%` (escapes come separately). */
const pathChar = fc.constantFrom(...range(0x21, 0x7e).filter((c) => !'?#%'.includes(c)));
const pathText = (minLength: number, maxLength: number) => fc.string({ unit: pathChar, minLength, maxLength });

/** Prompts without the simulated upstream's `sim:` fault tokens. */
const noSimTokens = (s: string) => s.replace(/sim:/gi, 'sim ');
const prompt = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).map(noSimTokens);

const urls = fc.constantFrom(
  'https://example.com/a.jpg',
  'http://127.0.0.1:9/x.mp4',
  'https://例え.jp/路径?q=1',
  'http://[::1]/x',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'http://169.254.169.254/latest/meta-data',
  'http://10.0.0.1/x',
  'https://user:pw@example.com/x',
  'http://2130706433/',
  'not a url',
  '',
  'http://',
  `https://example.com/${'a'.repeat(3000)}`,
);

const timestamps = fc.oneof(
  fc.constantFrom('0,3', '0,4', '3,0', '1.5,2.5', '-1,2', 'a,b', '0,3,5', '', ' 0 , 3 ', '1e1,1e1', '0,', ',3', '٠,٣'),
  fc.tuple(fc.double(), fc.double()).map(([a, b]) => `${a},${b}`),
);

/** `characters` as a string: JSON, the seed's relaxed syntax, and broken variants of both. */
const charactersText = fc.oneof(
  fc.constantFrom(
    '[{ url: "https://example.com/c.mp4", timestamps: "0,3" }]',
    "[{url:'https://example.com/c.mp4',timestamps:'1,2',},]",
    '[{"url":"https://example.com/c.mp4","timestamps":"0,3"}]',
    '[', '[{]', '{}', 'null', '[null]', '[[[[[[[[[[]]]]]]]]]]', '/* comment */ []', 'Infinity', '0x10', ' ', '',
    "[{ url: 'https://example.com/c.mp4', timestamps: '3,0' }]",
    '[{url:"https://example.com/c.mp4",timestamps:"0,3"},{url:"https://example.com/c.mp4",timestamps:"0,3"},{url:"https://example.com/c.mp4",timestamps:"0,3"},{url:"https://example.com/c.mp4",timestamps:"0,3"}]',
    '['.repeat(5000),
    '{'.repeat(3000),
    '[{url: "https://example.com/c.mp4", timestamps: "0,3", __proto__: {polluted: 1}}]',
  ),
  fc
    .tuple(fc.array(fc.tuple(urls, timestamps), { maxLength: 5 }), fc.constantFrom('json', 'relaxed', 'single'))
    .map(([entries, style]) => {
      const q = style === 'single' ? "'" : '"';
      const key = (k: string) => (style === 'json' ? `"${k}"` : k);
      return `[${entries.map(([u, t]) => `{ ${key('url')}: ${q}${u}${q}, ${key('timestamps')}: ${q}${t}${q} }`).join(', ')}]`;
    }),
);

/** A body the gateway should accept (or refuse only for the rules it checks). */
const plausibleBody = fc.record(
  {
    model: fc.constantFrom(...models),
    prompt,
    aspect_ratio: fc.constantFrom('16:9', '9:16'),
    duration: fc.constantFrom(10, 15, 25, '10', ' 15 '),
    image_urls: fc.array(urls, { maxLength: 2 }),
    characters: fc.oneof(fc.array(fc.record({ url: urls, timestamps }), { maxLength: 4 }), charactersText),
    callback_url: urls,
  },
  { requiredKeys: ['model', 'prompt'] },
);

/** A body the gateway must accept: every field within its rules, in the forms the seed allows. */
const validBody = fc
  .record(
    {
      model: fc.constantFrom(...models),
      prompt,
      aspect_ratio: fc.constantFrom('16:9', '9:16'),
      duration: fc.constantFrom(10, 15, '10'),
      image_urls: fc.constantFrom([], ['https://example.com/a.jpg']),
      characters: fc.constantFrom(
        [{ url: 'https://example.com/c.mp4', timestamps: '0,3' }],
        '[{ url: "https://example.com/c.mp4", timestamps: "1,2.5" }]',
        '',
      ),
      callback_url: fc.constantFrom('https://example.com/hook', 'http://127.0.0.1:9/hook'),
    },
    { requiredKeys: ['model', 'prompt'] },
  )
  .filter((b) => b.prompt.trim() !== '' && !/@character/.test(b.prompt));

const deepNesting = fc.integer({ min: 50, max: 20_000 }).chain((depth) =>
  fc.constantFrom('[', '{"a":').map((open) => open.repeat(depth) + '1' + (open === '[' ? ']' : '}').repeat(depth)),
);

/** Raw JSON text for one field: wrong types, huge and odd strings, nested junk. */
const junkValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 50 }).map((s) => JSON.stringify(s)), // lone surrogates, control characters
  fc.integer({ min: 4990, max: 60_000 }).map((n) => JSON.stringify('x'.repeat(n))),
  charactersText.map((s) => JSON.stringify(s)),
  deepNesting,
  fc.constantFrom('null', 'true', '0', '-0', '1e308', '-1', '10.5', '25', '"25"', '[]', '{}', '[[]]', '{"$ne":null}', '"__proto__"', '1e999', '"\\u0000"', '"\\ud800"'),
);

const fieldName = fc.oneof(
  fc.constantFrom(
    'model', 'prompt', 'aspect_ratio', 'duration', 'image_urls', 'characters', 'callback_url',
    'character_url', 'character_timestamps', '__proto__', 'constructor', 'id', 'state',
  ),
  fc.string({ maxLength: 20 }),
);

/** A plausible body with one or more fields replaced by junk (duplicate keys: the last one wins). */
const mutatedBody = fc
  .tuple(plausibleBody, fc.array(fc.tuple(fieldName, junkValue), { minLength: 1, maxLength: 3 }))
  .map(([base, changes]) => `${JSON.stringify(base).slice(0, -1)}${changes.map(([k, v]) => `,${JSON.stringify(k)}:${v}`).join('')}}`);

const submitBodyText: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { arbitrary: validBody.map((b) => JSON.stringify(b)), weight: 3 },
  { arbitrary: plausibleBody.map((b) => JSON.stringify(b)), weight: 3 },
  { arbitrary: mutatedBody, weight: 6 },
  { arbitrary: fc.json({ maxDepth: 4 }), weight: 2 },
  { arbitrary: fc.json({ maxDepth: 3, stringUnit: 'grapheme' }), weight: 1 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }), weight: 1 },
  { arbitrary: deepNesting, weight: 1 },
  { arbitrary: fc.integer({ min: 64 * 1024 - 64, max: 200 * 1024 }).map((n) => JSON.stringify({ model: 'sora-2', prompt: 'p', pad: 'x'.repeat(n) })), weight: 1 },
  { arbitrary: fc.constantFrom('', '{', '{"model":"sora-2",', 'null', '[]', '"sora-2"', '{"model":"sora-2","prompt":"a"}\u0000', '\ufeff{"model":"sora-2","prompt":"bom"}'), weight: 1 },
).map((text) => Buffer.from(text, 'utf8'))
  .chain((b) => fc.oneof({ arbitrary: fc.constant<Buffer | undefined>(b), weight: 12 }, { arbitrary: fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)), weight: 1 }, { arbitrary: fc.constant(undefined), weight: 1 }));

const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 8 },
  {
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json', 'application/vnd.api+json;v=1',
      'application/json;', 'application/jsonp', 'application/json; charset=latin1', 'text/plain', 'text/json',
      'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', '', ' application/json ',
    ),
    weight: 3,
  },
  { arbitrary: headerText(0, 60), weight: 1 },
);

/** Authorization: mostly the real key (so bodies get parsed), and junk of every kind. */
const authorization = (key: string) =>
  fc.oneof(
    { arbitrary: fc.constant(`Bearer ${key}`), weight: 10 },
    { arbitrary: fc.constantFrom(key, `bearer\t${key}`, `BEARER   ${key}  `, `Bearer ${key}x`, 'Bearer', 'Bearer ', `Basic ${Buffer.from(`u:${key}`).toString('base64')}`, `Bearer ${key}, Bearer ${key}`), weight: 3 },
    { arbitrary: headerText(0, 120), weight: 2 },
    { arbitrary: headerText(0, 120).map((s) => `Bearer ${s}`), weight: 1 },
    { arbitrary: headerText(1000, 4000), weight: 1 },
  );

/** Idempotency-Key of any length 0..300; a few shared values so replays and conflicts happen. */
const idempotencyKey = fc.oneof(
  { arbitrary: fc.constantFrom('order-1', 'order-2', 'order-3', ' order-1 ', 'ORDER-1'), weight: 2 },
  { arbitrary: headerText(0, 300), weight: 2 },
  { arbitrary: fc.integer({ min: 250, max: 300 }).map((n) => 'k'.repeat(n)), weight: 1 },
);

const optionalHeaders = (key: string) =>
  fc.record(
    {
      'content-type': contentType,
      authorization: authorization(key),
      'idempotency-key': idempotencyKey,
      'x-junk': headerText(0, 80),
      accept: fc.constantFrom('*/*', 'text/html', 'application/xml', ''),
    },
    { requiredKeys: [] },
  );

const percentEscapes = fc.constantFrom(
  '%E0%A4%A', '%', '%%', '%zz', '%2', '%00', '%2F', '%2e%2e', '%2E', '%C0%AF', '%FF', '%ED%A0%80', '%F0%9F%98%80', '%25', '%20', '%0A', '%E2%80%AE',
);

/** One path segment: route words, dot segments, %-escapes (broken ones too), unicode, very long. */
const segment = fc.oneof(
  { arbitrary: fc.constantFrom('v1', 'videos', 'generations', 'tasks', 'callbacks', 'upstream', 'content', 'openapi.json', '..', '.', ''), weight: 6 },
  { arbitrary: percentEscapes, weight: 2 },
  { arbitrary: pathText(1, 24), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map((s) => encodeURIComponent(s)), weight: 2 },
  { arbitrary: fc.tuple(pathText(0, 8), percentEscapes, pathText(0, 8)).map((p) => p.join('')), weight: 1 },
  // Past DynamoDB's 2 KiB key limit once in a key, still within what an HTTP server takes in a request line.
  { arbitrary: fc.integer({ min: 256, max: 6000 }).chain((n) => fc.constantFrom('a', 'task_', '%41', '%C3%A9').map((u) => u.repeat(Math.ceil(n / u.length)))), weight: 1 },
);

const taskIdLike = fc.oneof(
  fc.constant('task_00000000000000000000000000'),
  fc.stringMatching(/^task_[0-9a-z]{26}$/),
  segment,
);

const routeWithId = fc.constantFrom(
  '/v1/videos/generations/{id}',
  '/v1/videos/tasks/{id}',
  '/v1/videos/generations/{id}/content',
  '/callbacks/upstream/{id}',
);

const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom('limit', 'after', 'LIMIT', 'limit[]', 'token', ''), pathText(0, 10).map((s) => s.replace(/[&=]/g, ''))),
      fc.oneof(
        fc.constantFrom('0', '-1', '1', '20', '100', '101', '1e2', '1.5', '%205', '0x10', 'NaN', 'Infinity', '', '9007199254740993', encodeURIComponent('１０')),
        percentEscapes,
        pathText(0, 80).map((s) => s.replace(/&/g, '')),
        fc.string({ unit: 'grapheme', maxLength: 70 }).map((s) => encodeURIComponent(s)),
        fc.stringMatching(/^task_[0-9a-z]{26}$/),
      ),
      fc.boolean(),
    ),
    { maxLength: 5 },
  )
  .map((pairs) => pairs.map(([k, v, bare]) => (bare && v === '' ? k : `${k}=${v}`)).join('&'));

const method = fc.oneof(
  { arbitrary: fc.constantFrom('GET', 'POST'), weight: 6 },
  { arbitrary: fc.constantFrom(...METHODS.filter((m) => m !== 'CONNECT')), weight: 2 },
);

/** Request targets up to 8 KiB: longer ones are refused by the HTTP server before any gateway code runs. */
const MAX_TARGET = 8192;

/** Paths of any shape; `known` ids (tasks that exist) make some of them real. */
const probePath = (known: string[]) => fc.oneof(
  { arbitrary: fc.array(segment, { maxLength: 8 }).map((s) => `/${s.join('/')}`), weight: 4 },
  { arbitrary: fc.tuple(routeWithId, fc.oneof(taskIdLike, fc.constantFrom(...known))).map(([r, id]) => r.replace('{id}', id)), weight: 4 },
  { arbitrary: fc.array(segment, { maxLength: 4 }).map((s) => `//${s.join('/')}`), weight: 1 },
  { arbitrary: fc.constantFrom('*', '/', '//', '/v1/videos/generations/', '/v1//videos/generations', '/V1/VIDEOS/GENERATIONS', '/v1/videos/generations/../generations', '/v1/videos/generations/./x/..'), weight: 1 },
).map((p) => p.slice(0, MAX_TARGET - 600));

// ---- the properties -----------------------------------------------------------------------

describe('bad input never becomes a 5xx, a stack trace or a write', () => {
  it('generated submit bodies and headers', async () => {
    const arbitrary = fc.tuple(submitBodyText, optionalHeaders(h.gw.apiKey), fc.boolean());
    await fuzz(
      'submit',
      arbitrary,
      ([body, headers, withHeaders]) => ({
        probe: {
          method: 'POST',
          path: '/v1/videos/generations',
          // Mostly the headers a client sends, so that the body is what gets judged.
          headers: withHeaders ? headers : { 'content-type': 'application/json', authorization: `Bearer ${h.gw.apiKey}` },
          body,
        },
      }),
      800,
      10_000,
    );
  }, 30_000);

  it('generated paths and methods', async () => {
    const arbitrary = fc.tuple(method, probePath(fixtures.map((f) => f.id)), fc.option(queryString), optionalHeaders(h.gw.apiKey), fc.option(submitBodyText));
    await fuzz(
      'paths',
      arbitrary,
      ([m, path, query, headers, body]) => ({
        probe: { method: m, path: query === null ? path : `${path}?${query}`, headers, body: body ?? undefined },
      }),
      400,
      6_000,
    );
  }, 25_000);

  it('generated query strings on the list endpoint', async () => {
    const arbitrary = fc.tuple(queryString, fc.oneof({ arbitrary: fc.constant('/v1/videos/generations'), weight: 9 }, { arbitrary: fc.constant('/v1/videos/generations/'), weight: 1 }));
    await fuzz(
      'list',
      arbitrary,
      ([query, path]) => ({ probe: { method: 'GET', path: `${path}?${query}`, headers: { authorization: `Bearer ${h.gw.apiKey}` } } }),
      160,
      // Each list answer reads and signs up to a page of tasks: on a loaded machine 3 s held ~70 runs.
      8_000,
    );
  }, 30_000);

  it('generated upstream callbacks: junk tokens, junk bodies, and junk under a valid token', async () => {
    const fixture = fc.constantFrom(...fixtures);
    const upstreamState = fc.oneof(fc.constantFrom('pending', 'running', 'succeeded', 'error', 'RUNNING', 'queued_for_gpu', ''), fc.string({ maxLength: 12 }));
    const callbackShaped = fc
      .record(
        {
          id: fc.oneof(fixture.map((f) => f.upstreamId), fc.string({ maxLength: 20 }), fc.integer()),
          state: upstreamState,
          progress: fc.oneof(fc.integer({ min: -10, max: 200 }), fc.constantFrom('50', 'NaN', null, '1e9')),
          data: fc.oneof(
            fc.constant({ videos: [] }),
            fc.constant(null),
            // Loopback only: a URL that reaches the archive worker must not leave this machine.
            fc.constantFrom('http://127.0.0.1:1/v.mp4', 'not a url', '', 'ftp://127.0.0.1/v.mp4').map((url) => ({ videos: [{ url }] })),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          message: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 1 })),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b));
    const body = fc.oneof(
      { arbitrary: callbackShaped.map((t) => Buffer.from(t)), weight: 3 },
      { arbitrary: submitBodyText, weight: 2 },
    );
    const target = fc.oneof({ arbitrary: fixture.map((f) => f.id), weight: 4 }, { arbitrary: taskIdLike, weight: 2 });
    const token = fc.oneof(
      { arbitrary: fc.constant('valid'), weight: 5 },
      { arbitrary: fc.constantFrom('', 'x', 'valid-for-another-task', 'valid-plus-one', 'valid-twice'), weight: 2 },
      { arbitrary: pathText(0, 60).map((s) => encodeURIComponent(s)), weight: 1 },
      { arbitrary: percentEscapes, weight: 1 },
      { arbitrary: fc.constant(undefined), weight: 1 },
    );
    const arbitrary = fc.tuple(target, token, body, fc.option(contentType));
    await fuzz(
      'callbacks',
      arbitrary,
      ([id, tok, payload, type]) => {
        let decoded = id;
        try {
          decoded = decodeURIComponent(id);
        } catch {
          // a broken escape: the route does not match, the token does not matter
        }
        const tokenFor = (taskId: string) => callbackToken(callbackSecret, taskId);
        const tokens = new Map([
          ['valid', tokenFor(decoded)],
          ['valid-for-another-task', tokenFor(`${decoded}x`)],
          ['valid-plus-one', `${tokenFor(decoded)}A`],
          ['valid-twice', `${tokenFor(decoded)}&token=${tokenFor(decoded)}`],
        ]);
        const query = tok === undefined ? '' : `?token=${tokens.get(tok) ?? tok}`;
        const isFixture = fixtures.some((f) => f.id === decoded);
        return {
          probe: {
            method: 'POST',
            path: `/callbacks/upstream/${id}${query}`,
            headers: type === null ? ({} as Record<string, string>) : { 'content-type': type },
            body: payload,
          },
          target: isFixture ? decoded : undefined,
        };
      },
      300,
      6_000,
    );
  }, 25_000);

  it('afterwards the table holds exactly the accepted tasks, their key claims, and the keys it started with', async () => {
    const items = await scanTable();
    const tasks = items.filter((i) => String(i.pk).startsWith('TASK#')).map((i) => String(i.id));
    expect(new Set(tasks)).toEqual(accepted);
    const claims = items.filter((i) => String(i.pk).startsWith('IDEM#')).map((i) => String(i.pk).slice(`IDEM#${owner}#`.length));
    for (const key of claims) expect(acceptedIdempotencyKeys, `claim for Idempotency-Key ${JSON.stringify(key)}`).toContain(key);
    expect(items.filter((i) => String(i.pk).startsWith('KEY#'))).toHaveLength(keyItemsAtStart);
    // The key's usage: reservations only for accepted tasks, and every task counted once in its month.
    const usage = items.filter((i) => String(i.pk).startsWith(`USAGE#${owner}#`));
    for (const item of usage)
      for (const attribute of Object.keys(item).filter((a) => a.startsWith('r:'))) expect(accepted, `reservation ${attribute}`).toContain(attribute.slice(2));
    const months = usage.filter((i) => /#\d{4}-\d{2}$/.test(String(i.pk)));
    expect(months.reduce((n, i) => n + Number(i['t:tasks'] ?? 0), 0)).toBe(tasks.length);
    const others = items.filter((i) => !/^(TASK|IDEM|KEY|USAGE)#/.test(String(i.pk)));
    expect(others).toEqual([]);
  });
});
