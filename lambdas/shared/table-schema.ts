/**
 * Key design of the one DynamoDB table. The stack creates the table from this; the local
 * runtime creates its copy from the synthesized template, so both agree with it.
 *
 * - task items: `pk = TASK#<id>`; `owner` + `id` index them per API key, newest first;
 *   `open` + `due_at` (sparse: only while the gateway still owes the task work) is what the
 *   reconciler scans.
 * - API key items: `pk = KEY#<sha256 of the key>`.
 * - idempotency items: `pk = IDEM#<owner>#<Idempotency-Key>`.
 */
export const tableSchema = {
  partitionKey: 'pk',
  ttlAttribute: 'expires_at',
  byOwner: { indexName: 'byOwner', partitionKey: 'owner', sortKey: 'id' },
  byDue: { indexName: 'byDue', partitionKey: 'open', sortKey: 'due_at' },
} as const;
