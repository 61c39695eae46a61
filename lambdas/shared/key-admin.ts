import { parseArgs } from 'node:util';
import { keyId, type ApiKeyRecord, type ApiKeyStore } from './api-keys';
import { limitNames, type LimitName } from './contracts/limits';
import { checkUrl, clientUrlPolicy } from './outbound';

/**
 * `npm run keys`: create, list, show, set and revoke API keys. This module is the command's logic
 * (arguments, what each command does, what it prints); `bin/keys.ts` finds the table
 * (local gateway or deployed stack) and hands this an `ApiKeyStore` on it.
 */

/** Exit codes of the command. */
export const EXIT = { ok: 0, usage: 1, notFound: 2, failed: 3 } as const;

const errorCodes = { [EXIT.usage]: 'usage', [EXIT.notFound]: 'not_found', [EXIT.failed]: 'failed' } as const;

/** A failure the command reports in words (or as `{"error": {code, message}}` with --json) and an exit code. */
export class KeyAdminError extends Error {
  constructor(
    readonly exitCode: keyof typeof errorCodes,
    message: string,
  ) {
    super(message);
  }

  get code() {
    return errorCodes[this.exitCode];
  }

  static usage(message: string) {
    return new KeyAdminError(EXIT.usage, message);
  }

  static notFound(message: string) {
    return new KeyAdminError(EXIT.notFound, message);
  }
}

export const DEFAULT_STACK = 'VideoTaskGateway';
export const DEFAULT_DATA_DIR = '.data';

/** Where the keys live: the local gateway's data directory, or a table in AWS. */
export type KeyTarget =
  | { kind: 'local'; dataDir: string }
  | { kind: 'aws'; stack: string; table?: undefined; region?: string; endpoint?: undefined }
  | { kind: 'aws'; table: string; stack?: undefined; region?: string; endpoint?: string };

/** A limit as the command line gives it: a number, `none` (no limit for this key) or `default` (the operator's). */
export type LimitSetting = number | null | 'default';

export type KeyCommand =
  | { action: 'help' }
  | { action: 'create'; name: string; admin: boolean }
  | { action: 'list' }
  | { action: 'show'; id: string }
  /** `webhookUrl` null: the key has no default webhook any more. */
  | { action: 'set'; id: string; webhookUrl: string | null }
  | { action: 'revoke'; id: string }
  | { action: 'limits'; id: string; change: Partial<Record<LimitName, LimitSetting>> };

export interface KeyInvocation {
  command: KeyCommand;
  target: KeyTarget;
  json: boolean;
}

export const keysHelp = `Manage the gateway's API keys.

Usage:
  npm run keys -- create --name NAME [--admin] [target] [--json]
  npm run keys -- list [target] [--json]
  npm run keys -- show KEY_ID [target] [--json]
  npm run keys -- set KEY_ID --webhook-url URL | --no-webhook-url [target] [--json]
  npm run keys -- revoke KEY_ID [target] [--json]
  npm run keys -- limits KEY_ID [--concurrent N] [--rpm N] [--seconds-per-day N]
                        [--seconds-per-month N] [target] [--json]

Commands:
  create --name NAME   Make a new key; prints the key and its whsec_ webhook secret,
                       which are shown only this once (the table keeps only the
                       key's SHA-256 hash). --admin makes an operator's key: it
                       reads every task, per-key usage and upstream health
                       under /admin/… (any other key gets 404 there).
  list                 Every key: id, name, status, role, limits, dates, default webhook.
                       Never shows keys, hashes or webhook secrets.
  show KEY_ID          One key, as list shows it.
  set KEY_ID           Change a key: --webhook-url URL (http or https) is where the
                       webhooks of its tasks created without a callback_url go, from
                       the next task on (tasks keep the URL they were created with);
                       --no-webhook-url (or --webhook-url '') removes it. A deployed
                       gateway sends webhooks only to public hosts; the local one also
                       to loopback. The gateway applies it within its key cache time.
  revoke KEY_ID        Refuse the key from now on (KEY_ID: the 12-character id that
                       \`list\` shows). The gateway notices within its key cache time
                       (KEY_CACHE_SECONDS, default 60 s).
  limits KEY_ID        Show the key's limits, or set them: --concurrent (tasks open
                       at once), --rpm (submits a minute), --seconds-per-day and
                       --seconds-per-month (seconds of video, UTC day and month).
                       Each takes a whole number, \`none\` (no limit for this key) or
                       \`default\` (the operator's DEFAULT_LIMITS again). Over a limit a
                       submit is 429; the gateway applies a change within its key
                       cache time.

Target (default: the local gateway in .data):
  --data-dir DIR       The local gateway's data directory (as DATA_DIR for npm start).
                       While \`npm start\` runs, its DynamoDB is used (DIR/endpoints.json);
                       otherwise this command opens DIR/dynamodb itself for its duration.
  --aws                The deployed stack ${DEFAULT_STACK} (AWS default credentials).
  --stack NAME         A deployed stack by name; its TableName output names the table.
  --stage STAGE        The deployed stack of a stage (${DEFAULT_STACK}-STAGE).
  --table NAME         A DynamoDB table by name, without asking CloudFormation.
  --region REGION      AWS region (default: the AWS SDK's, e.g. AWS_REGION); implies --aws.
  --endpoint URL       DynamoDB endpoint for --table (e.g. DynamoDB Local).

Output:
  --json               Machine-readable output on stdout (errors as JSON on stderr).
  -h, --help           This text.

Exit codes: 0 done, 1 usage error, 2 not found (key, stack, table or local data),
3 the table could not be reached or updated.
`;

const hexId = /^[0-9a-f]{12}$/;
const MAX_NAME = 100;

/** Read the command line (the words after `npm run keys --`). Throws a usage error. */
export function parseKeyArgs(argv: string[]): KeyInvocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        admin: { type: 'boolean' },
        'data-dir': { type: 'string' },
        aws: { type: 'boolean' },
        stack: { type: 'string' },
        stage: { type: 'string' },
        table: { type: 'string' },
        region: { type: 'string' },
        endpoint: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        concurrent: { type: 'string' },
        rpm: { type: 'string' },
        'seconds-per-day': { type: 'string' },
        'seconds-per-month': { type: 'string' },
        'webhook-url': { type: 'string' },
        'no-webhook-url': { type: 'boolean' },
      },
    });
  } catch (error) {
    throw KeyAdminError.usage((error as Error).message.split('\n')[0]!);
  }
  const { values: v, positionals } = parsed;
  const json = v.json === true;
  const [action, ...rest] = positionals;
  if (v.help || action === 'help') return { command: { action: 'help' }, target: { kind: 'local', dataDir: DEFAULT_DATA_DIR }, json };

  const blank = (flag: string, value: string | undefined) => {
    if (value !== undefined && value.trim() === '') throw KeyAdminError.usage(`--${flag} must not be empty`);
  };
  for (const flag of ['data-dir', 'stack', 'stage', 'table', 'region', 'endpoint'] as const) blank(flag, v[flag]);

  const target = parseTarget(v);

  let command: KeyCommand;
  switch (action) {
    case undefined:
      throw KeyAdminError.usage('name a command: create, list, show, set, revoke or limits');
    case 'create': {
      if (rest.length) throw KeyAdminError.usage(`create takes no arguments besides --name (got "${rest.join(' ')}")`);
      const name = v.name?.trim();
      if (!name) throw KeyAdminError.usage('create needs --name NAME (who or what the key is for)');
      if (name.length > MAX_NAME) throw KeyAdminError.usage(`--name is at most ${MAX_NAME} characters`);
      if (/[\p{Cc}\u2028\u2029]/u.test(name)) throw KeyAdminError.usage('--name must not contain control characters (C0, DEL or C1) or line separators');
      // Bidirectional overrides, embeddings, isolates and marks reorder what `list` shows.
      if (/\p{Bidi_Control}/u.test(name)) throw KeyAdminError.usage('--name must not contain bidirectional control characters (such as U+202E)');
      command = { action: 'create', name, admin: v.admin === true };
      break;
    }
    case 'list':
      if (rest.length) throw KeyAdminError.usage(`list takes no arguments (got "${rest.join(' ')}")`);
      command = { action: 'list' };
      break;
    case 'show':
      command = { action: 'show', id: keyIdArgument('show', rest) };
      break;
    case 'set': {
      const id = keyIdArgument('set', rest);
      const given = v['webhook-url'];
      if (given !== undefined && v['no-webhook-url']) throw KeyAdminError.usage('give --webhook-url URL or --no-webhook-url, not both');
      if (given === undefined && !v['no-webhook-url']) throw KeyAdminError.usage('set needs --webhook-url URL (or --no-webhook-url to remove it)');
      command = { action: 'set', id, webhookUrl: given === undefined || given.trim() === '' ? null : webhookUrlArgument(given.trim()) };
      break;
    }
    case 'revoke':
      command = { action: 'revoke', id: keyIdArgument('revoke', rest) };
      break;
    case 'limits': {
      const id = keyIdArgument('limits', rest);
      const change: Partial<Record<LimitName, LimitSetting>> = {};
      for (const name of limitNames) {
        const given = v[limitFlag(name)];
        if (given !== undefined) change[name] = parseLimit(limitFlag(name), given);
      }
      command = { action: 'limits', id, change };
      break;
    }
    default:
      throw KeyAdminError.usage(`unknown command "${action}": use create, list, show, set, revoke or limits`);
  }
  for (const name of limitNames)
    if (v[limitFlag(name)] !== undefined && command.action !== 'limits') throw KeyAdminError.usage(`--${limitFlag(name)} is only for limits`);
  if (v.name !== undefined && command.action !== 'create') throw KeyAdminError.usage('--name is only for create');
  if (v.admin !== undefined && command.action !== 'create') throw KeyAdminError.usage('--admin is only for create');
  for (const flag of ['webhook-url', 'no-webhook-url'] as const)
    if (v[flag] !== undefined && command.action !== 'set') throw KeyAdminError.usage(`--${flag} is only for set`);
  return { command, target, json };
}

/** The one KEY_ID a command names, as `list` shows it (either case). */
function keyIdArgument(action: string, rest: string[]): string {
  if (rest.length !== 1) throw KeyAdminError.usage(`${action} needs exactly one KEY_ID (the id that \`list\` shows)`);
  const id = rest[0]!.trim().toLowerCase();
  if (!hexId.test(id)) throw KeyAdminError.usage(`"${rest[0]}" is not a key id: ids are the 12 hexadecimal characters that \`list\` shows`);
  return id;
}

/**
 * A webhook URL as a request's `callback_url` must be written: absolute, http(s), a host, no
 * credentials. Which addresses are fine depends on the gateway that sends (see `set`).
 */
function webhookUrlArgument(given: string): string {
  const verdict = checkUrl(given, { ...clientUrlPolicy(true), anyAddress: true });
  if (!verdict.ok) throw KeyAdminError.usage(`--webhook-url must be an http(s) URL: ${verdict.reason} (got "${given}")`);
  return given;
}

const limitFlag = (name: LimitName) => (name === 'seconds_per_day' ? 'seconds-per-day' : name === 'seconds_per_month' ? 'seconds-per-month' : name);

function parseLimit(flag: string, given: string): LimitSetting {
  const value = given.trim().toLowerCase();
  if (value === 'none') return null;
  if (value === 'default') return 'default';
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw KeyAdminError.usage(`--${flag} takes a whole number of at least 1, none or default (got "${given}")`);
  return Number(value);
}

export function parseTarget(v: {
  'data-dir'?: string;
  aws?: boolean;
  stack?: string;
  stage?: string;
  table?: string;
  region?: string;
  endpoint?: string;
}): KeyTarget {
  const named = [v.stack && '--stack', v.stage && '--stage', v.table && '--table'].filter(Boolean);
  if (named.length > 1) throw KeyAdminError.usage(`${named.join(' and ')} name the same thing: give one`);
  const aws = v.aws || v.stack || v.stage || v.table || v.region || v.endpoint;
  if (!aws) return { kind: 'local', dataDir: v['data-dir'] ?? DEFAULT_DATA_DIR };
  if (v['data-dir'] !== undefined) throw KeyAdminError.usage('--data-dir is for the local gateway; it does not go with the AWS options');
  if (v.table) return { kind: 'aws', table: v.table, region: v.region, endpoint: v.endpoint };
  if (v.endpoint) throw KeyAdminError.usage('--endpoint needs --table (the stack is looked up in AWS itself)');
  return { kind: 'aws', stack: v.stack ?? (v.stage ? `${DEFAULT_STACK}-${v.stage}` : DEFAULT_STACK), region: v.region };
}

/** What a command produced: the text for people and the same facts for `--json`. */
export interface KeyCommandResult {
  text: string;
  data: Record<string, unknown>;
}

type KeyAdminStore = Pick<ApiKeyStore, 'create' | 'list' | 'revoke' | 'setLimits' | 'setWebhookUrl'>;

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** A key as `list` shows it: never the key, its hash beyond the id, or its webhook secret. */
export function publicKeyView(record: ApiKeyRecord) {
  return {
    id: keyId(record.key_hash),
    name: record.name,
    status: record.revoked_at === undefined ? ('active' as const) : ('revoked' as const),
    admin: record.admin === true,
    limits: Object.fromEntries(limitNames.map((n) => [n, record.limits?.[n] === undefined ? 'default' : record.limits[n]])) as Record<LimitName, number | null | 'default'>,
    webhook_url: record.webhook_url ?? null,
    created_at: iso(record.created_at)!,
    revoked_at: iso(record.revoked_at),
  };
}

/** The one key with this id; "not found" (exit 2) or "more than one" (exit 3, nothing done) otherwise. */
async function findKey(store: KeyAdminStore, id: string, where: { description: string }): Promise<ApiKeyRecord> {
  const matches = (await store.list()).filter((r) => r.key_hash.startsWith(id));
  if (matches.length === 0) throw KeyAdminError.notFound(`no key with id ${id} in ${where.description} (\`list\` shows the ids)`);
  if (matches.length > 1) throw new KeyAdminError(EXIT.failed, `key id ${id} matches more than one key; nothing was changed`);
  return matches[0]!;
}

export const SHOWN_ONCE =
  'WARNING: the API key and webhook secret are shown only this once. Store them now: the gateway keeps only a hash of the key and cannot show it again.';

/**
 * Run one command against a key table. `where` says which table, for the messages; the
 * local gateway's own key ("local") gets a note on revoke: it stays revoked, and the next
 * `npm start` makes a new one.
 */
export async function runKeyCommand(
  command: Exclude<KeyCommand, { action: 'help' }>,
  store: KeyAdminStore,
  where: { description: string; local: boolean },
): Promise<KeyCommandResult> {
  switch (command.action) {
    case 'create': {
      const { key, record } = await store.create(command.name, undefined, undefined, { admin: command.admin });
      const view = publicKeyView(record);
      return {
        data: { ...view, api_key: key, webhook_secret: record.webhook_secret, target: where.description, warning: SHOWN_ONCE },
        text: [
          `Created ${view.admin ? 'admin ' : ''}API key "${view.name}" (id ${view.id}) in ${where.description}.`,
          ...(view.admin ? ['It reads every task, per-key usage and upstream health under /admin/… and in the console.'] : []),
          '',
          `  API key:         ${key}`,
          `  Webhook secret:  ${record.webhook_secret}`,
          '',
          SHOWN_ONCE,
          'Clients send the key as "Authorization: Bearer <key>"; the webhook secret verifies the',
          'signed deliveries to their callback_url (Standard Webhooks).',
          '',
        ].join('\n'),
      };
    }
    case 'list': {
      const keys = (await store.list()).sort((a, b) => a.created_at - b.created_at).map(publicKeyView);
      return { data: { target: where.description, keys }, text: listText(keys, where.description) };
    }
    case 'show': {
      const view = publicKeyView(await findKey(store, command.id, where));
      return { data: { ...view, target: where.description }, text: keyText(view, where.description) };
    }
    case 'set': {
      await findKey(store, command.id, where);
      if (command.webhookUrl !== null) {
        // The gateway that will send to it decides which hosts are fine: a deployed one, public hosts only.
        const verdict = checkUrl(command.webhookUrl, clientUrlPolicy(where.local));
        if (!verdict.ok)
          throw KeyAdminError.usage(
            `--webhook-url: ${verdict.reason}; ${where.local ? 'the local gateway sends webhooks only to public and loopback hosts' : `${where.description} sends webhooks only to public hosts`}`,
          );
      }
      const record = await store.setWebhookUrl(command.id, command.webhookUrl);
      if (!record) throw new KeyAdminError(EXIT.failed, `key ${command.id} could not be updated`);
      const view = publicKeyView(record);
      return {
        data: { ...view, target: where.description },
        text: [
          view.webhook_url === null
            ? `Key ${view.id} ("${view.name}") has no default webhook now: tasks created without a callback_url send none.`
            : `Key ${view.id} ("${view.name}") sends the webhooks of tasks created without a callback_url to ${view.webhook_url}.`,
          'Tasks keep the URL they were created with; the gateway applies this within its key cache time (KEY_CACHE_SECONDS, default 60 s).',
          '',
        ].join('\n'),
      };
    }
    case 'limits': {
      const found = await findKey(store, command.id, where);
      const changing = Object.keys(command.change).length > 0;
      const record = changing ? await store.setLimits(command.id, command.change) : found;
      if (!record) throw new KeyAdminError(EXIT.failed, `key ${command.id} could not be updated`);
      const view = publicKeyView(record);
      const shown = limitNames.map((n) => `  ${n.padEnd(18)} ${limitText(view.limits[n])}`);
      return {
        data: { ...view, target: where.description },
        text: [
          `Limits of key ${view.id} ("${view.name}") in ${where.description}${changing ? ', now' : ''}:`,
          ...shown,
          ...(changing ? ['The gateway applies them within its key cache time (KEY_CACHE_SECONDS, default 60 s).'] : []),
          '',
        ].join('\n'),
      };
    }
    case 'revoke': {
      const matches = (await store.list()).filter((r) => r.key_hash.startsWith(command.id));
      if (matches.length === 0) throw KeyAdminError.notFound(`no key with id ${command.id} in ${where.description} (\`list\` shows the ids)`);
      const before = matches[0]!;
      if (matches.length > 1 || !(await store.revoke(command.id)))
        throw new KeyAdminError(EXIT.failed, `key id ${command.id} matches more than one key; nothing was revoked`);
      const already = before.revoked_at !== undefined;
      const revokedAt = before.revoked_at ?? Date.now();
      const view = { ...publicKeyView({ ...before, revoked_at: revokedAt }), already_revoked: already };
      const lines = already
        ? [`Key ${view.id} ("${view.name}") was already revoked on ${view.revoked_at}; nothing changed.`]
        : [
            `Revoked key ${view.id} ("${view.name}") in ${where.description}.`,
            'The gateway refuses it with 401 once its cached lookup expires (KEY_CACHE_SECONDS, default 60 s).',
          ];
      if (where.local && before.name === 'local' && !already)
        lines.push(
          'This is the key `npm start` prints. It stays revoked: the next `npm start` makes a new local key (kept in local-key.json) and prints it; started with LOCAL_API_KEY set to this key, it says the key is revoked.',
        );
      return { data: { ...view, target: where.description }, text: `${lines.join('\n')}\n` };
    }
  }
}

function keyText(view: ReturnType<typeof publicKeyView>, where: string): string {
  const rows: [string, string][] = [
    ['id', view.id],
    ['name', view.name],
    ['status', view.status],
    ['role', view.admin ? 'admin' : 'client'],
    ...limitNames.map((n): [string, string] => [n, limitText(view.limits[n])]),
    ['webhook_url', view.webhook_url ?? "none (only tasks' own callback_url)"],
    ['created_at', view.created_at],
    ['revoked_at', view.revoked_at ?? ''],
  ];
  return `Key ${view.id} in ${where}:\n${rows.map(([k, v]) => `  ${k.padEnd(18)} ${v}`.trimEnd()).join('\n')}\n`;
}

const limitText = (value: number | null | 'default') => (value === null ? 'none' : value === 'default' ? "default (the operator's DEFAULT_LIMITS)" : String(value));

/** The key's own limits in a few words, `default` when it has none of its own. */
function limitsSummary(limits: Record<LimitName, number | null | 'default'>): string {
  const own = limitNames.filter((n) => limits[n] !== 'default').map((n) => `${n}=${limits[n] ?? 'none'}`);
  return own.length ? own.join(' ') : 'default';
}

function listText(keys: ReturnType<typeof publicKeyView>[], where: string): string {
  if (keys.length === 0) return `No API keys in ${where}. Create one with: npm run keys -- create --name NAME\n`;
  const rows = [
    ['ID', 'NAME', 'STATUS', 'ROLE', 'LIMITS', 'CREATED', 'REVOKED', 'WEBHOOK'],
    ...keys.map((k) => [k.id, k.name, k.status, k.admin ? 'admin' : 'client', limitsSummary(k.limits), k.created_at, k.revoked_at ?? '', k.webhook_url ?? '']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const active = keys.filter((k) => k.status === 'active').length;
  return `${table.join('\n')}\n\n${keys.length} key${keys.length === 1 ? '' : 's'} (${active} active) in ${where}.\n`;
}
