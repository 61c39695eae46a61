import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { lazySchema } from './contracts/lazy';
import { conditionalPut } from './aws/conditional-put';
import { limitsSchema, type Limits } from './contracts/limits';
import { ApiError, header, type HttpEvent } from './http';

/**
 * API keys. A key is shown once; the table keeps only its SHA-256, under which the key's
 * tasks are owned, plus the `whsec_` secret that signs its webhooks.
 */
export const KEY_PREFIX = 'vtg_';

export const apiKeyRecordSchema = lazySchema(() =>
  z.object({
    key_hash: z.string(),
    name: z.string(),
    webhook_secret: z.string(),
    created_at: z.number(),
    revoked_at: z.optional(z.number()),
    /** An operator's key: reads every task, per-key usage and upstream health under /admin. */
    admin: z.optional(z.boolean()),
    /** The key's own limits (`keys limits`); those it lacks are the operator's `DEFAULT_LIMITS`. */
    limits: z.optional(limitsSchema),
    /** Where the webhook of a task made without `callback_url` goes (`keys set --webhook-url`). */
    webhook_url: z.optional(z.string()),
  }),
);
export type ApiKeyRecord = z.infer<ReturnType<typeof apiKeyRecordSchema>>;

export const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
const keyItem = (hash: string) => ({ pk: `KEY#${hash}` });

/** A short public name of a key: the start of its hash, as `keys list` shows it. */
export const keyId = (hash: string) => hash.slice(0, 12);

const MAX_CACHED_KEYS = 1000;

const keyRecord = (name: string, key: string, webhookSecret: string, admin = false): ApiKeyRecord => ({
  key_hash: hashKey(key),
  name,
  webhook_secret: webhookSecret,
  created_at: Date.now(),
  ...(admin ? { admin: true } : {}),
});

export const newApiKey = () => `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export class ApiKeyStore {
  private readonly cache = new Map<string, { record: ApiKeyRecord | undefined; until: number }>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly cacheMs = 60_000,
  ) {}

  /** Store a key (new, or a given one such as the local runtime's); returns its record. */
  async create(name: string, key = newApiKey(), webhookSecret = newWebhookSecret(), options: { admin?: boolean } = {}) {
    const record = keyRecord(name, key, webhookSecret, options.admin);
    await this.db.send(new PutCommand({ TableName: this.table, Item: { ...keyItem(record.key_hash), ...record } }));
    return { key, record };
  }

  /** Register a given key unless it is already known (a revoked key stays revoked). */
  async ensure(name: string, key: string, webhookSecret: string): Promise<void> {
    const record = keyRecord(name, key, webhookSecret);
    await conditionalPut(this.db, {
      TableName: this.table,
      Item: { ...keyItem(record.key_hash), ...record },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  }

  async byHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: keyItem(hash) }));
    return Item ? apiKeyRecordSchema().parse(Item) : undefined;
  }

  /** The key's record when it is known and not revoked; lookups are cached for `cacheMs`. */
  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    const hash = hashKey(key);
    const hit = this.cache.get(hash);
    const now = Date.now();
    if (hit && hit.until > now) return hit.record;
    const found = await this.byHash(hash);
    const record = found && found.revoked_at === undefined ? found : undefined;
    if (this.cacheMs > 0) {
      // Bounded: a flood of made-up keys must not grow a warm Lambda's memory.
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.clear();
      this.cache.set(hash, { record, until: now + this.cacheMs });
    }
    return record;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const records: ApiKeyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'begins_with(pk, :k)',
          ExpressionAttributeValues: { ':k': 'KEY#' },
          ExclusiveStartKey: start,
        }),
      );
      records.push(...(page.Items ?? []).map((i) => apiKeyRecordSchema().parse(i)));
      start = page.LastEvaluatedKey;
    } while (start);
    return records;
  }

  /** The one key whose hash starts with this id; undefined when none or several do. */
  private async only(id: string): Promise<ApiKeyRecord | undefined> {
    const matches = (await this.list()).filter((r) => r.key_hash.startsWith(id));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** Revoke by key id (hash prefix); false when no single key matches. */
  async revoke(id: string): Promise<boolean> {
    const match = await this.only(id);
    if (!match) return false;
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: keyItem(match.key_hash),
        UpdateExpression: 'SET revoked_at = if_not_exists(revoked_at, :now)',
        ExpressionAttributeValues: { ':now': Date.now() },
      }),
    );
    return true;
  }

  /**
   * Set some of the key's limits (a number, or `null` for none) and drop others (`undefined`:
   * the operator's default again), by key id; the record after, or undefined when no single key matches.
   */
  async setLimits(id: string, change: Partial<Record<keyof Limits, number | null | 'default'>>): Promise<ApiKeyRecord | undefined> {
    const match = await this.only(id);
    if (!match) return undefined;
    const names: Record<string, string> = { '#limits': 'limits' };
    const values: Record<string, unknown> = { ':none': {} };
    const sets: string[] = [];
    const removes: string[] = [];
    Object.entries(change).forEach(([name, value], i) => {
      if (value === undefined) return;
      names[`#l${i}`] = name;
      if (value === 'default') removes.push(`#limits.#l${i}`);
      else {
        values[`:l${i}`] = value;
        sets.push(`#limits.#l${i} = :l${i}`);
      }
    });
    // The map must exist before its members are set: one update makes it, the next fills it.
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: keyItem(match.key_hash),
        UpdateExpression: 'SET #limits = if_not_exists(#limits, :none)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#limits': 'limits' },
        ExpressionAttributeValues: { ':none': {} },
      }),
    );
    if (sets.length || removes.length) {
      delete values[':none'];
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keyItem(match.key_hash),
          UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' '),
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        }),
      );
    }
    return this.byHash(match.key_hash);
  }

  /**
   * Set the key's default webhook URL, or drop it (`null`), by key id; the record after, or
   * undefined when no single key matches. The caller has checked the URL.
   */
  async setWebhookUrl(id: string, url: string | null): Promise<ApiKeyRecord | undefined> {
    const match = await this.only(id);
    if (!match) return undefined;
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: keyItem(match.key_hash),
        UpdateExpression: url === null ? 'REMOVE webhook_url' : 'SET webhook_url = :url',
        ConditionExpression: 'attribute_exists(pk)',
        ...(url === null ? {} : { ExpressionAttributeValues: { ':url': url } }),
      }),
    );
    return this.byHash(match.key_hash);
  }

  /** The caller's key from `Authorization: <key>` or `Authorization: Bearer <key>`; 401 otherwise. */
  async authenticate(event: HttpEvent): Promise<ApiKeyRecord> {
    const value = header(event, 'authorization')?.trim();
    const key = value?.replace(/^Bearer\s+/i, '').trim();
    if (!key) throw new ApiError(401, 'unauthorized', 'send your API key in the Authorization header');
    const record = await this.verify(key);
    if (!record) throw new ApiError(401, 'unauthorized', 'unknown or revoked API key');
    return record;
  }

  /** An admin key, or the same 404 as any unknown path: other keys do not learn /admin exists. */
  async authenticateAdmin(event: HttpEvent): Promise<ApiKeyRecord> {
    const record = await this.authenticate(event);
    if (!record.admin) throw new ApiError(404, 'not_found', `no route for ${event.requestContext?.http?.method ?? 'GET'} ${event.rawPath ?? ''}`.trim());
    return record;
  }
}
