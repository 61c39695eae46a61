/**
 * Key design of the one DynamoDB table. The stack creates the table from this; the local
 * runtime creates its copy from the synthesized template, so both agree with it.
 *
 * - task items: `pk = TASK#<id>`; `owner` + `id` index them per API key, newest first
 *   (`byOwnerKeys` projects only the keys, so that a task's updates, which never change
 *   them, cost that index nothing: one key value per API key takes one write per task;
 *   `legacyByOwner`, which projected every attribute, is never read: the stack keeps it only
 *   for the first deploy of an upgrade from a table that has it);
 *   `open` + `due_at` (sparse: only while the gateway still owes the task work) is what the
 *   reconciler scans; `open` is one of `open#0…open#31`, chosen from the task id, so that
 *   the index's writes spread over many partitions (tasks written before the shards hold
 *   `open`, and move to their shard at their next change).
 * - API key items: `pk = KEY#<sha256 of the key>`.
 * - idempotency items: `pk = IDEM#<owner>#<Idempotency-Key>`.
 */
export const tableSchema = {
  partitionKey: 'pk',
  ttlAttribute: 'expires_at',
  byOwner: { indexName: 'byOwnerKeys', partitionKey: 'owner', sortKey: 'id', projection: 'KEYS_ONLY' },
  legacyByOwner: { indexName: 'byOwner', partitionKey: 'owner', sortKey: 'id', projection: 'ALL' },
  byDue: { indexName: 'byDue', partitionKey: 'open', sortKey: 'due_at', projection: 'ALL' },
} as const;

/** How many due-index shards writes spread over unless `DUE_SHARDS` says otherwise. */
export const DEFAULT_DUE_SHARDS = 8;
/** The most due-index shards a table may use; readers read every one of them. */
export const MAX_DUE_SHARDS = 32;
/** The unsharded value of tasks written before the index was sharded. */
export const LEGACY_DUE_KEY = 'open';

/** A task's due-index key: `open#<n>`, n from a hash of its id (stable, evenly spread). */
export function dueKey(taskId: string, shards: number): string {
  let hash = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < taskId.length; i++) hash = Math.imul(hash ^ taskId.charCodeAt(i), 0x01000193);
  return `open#${(hash >>> 0) % Math.min(Math.max(1, shards), MAX_DUE_SHARDS)}`;
}

/** Every due-index key a reader must look under: the shards and the unsharded value. */
export const dueKeys: readonly string[] = [...Array.from({ length: MAX_DUE_SHARDS }, (_, i) => `open#${i}`), LEGACY_DUE_KEY];
