import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { TaskRecord } from '../lambdas/shared/contracts/task';
import { DEFAULT_DUE_SHARDS, dueKey } from '../lambdas/shared/table-schema';
import { localCredentials } from '../local/embedded-aws';
import { startLocalGateway } from '../local/gateway';
import { taskRecord } from '../test/fixtures/task';
import { ratio, table } from './lib';
import { countRequests } from './task-cost';

export interface ReconcileScaleResult {
  tasks: number;
  /** Time to write the due tasks into the table (not part of the measure). */
  seedMs: number;
  /** One reconcile run over them. */
  reconcileMs: number;
  /**
   * CPU of the gateway's process (the reconciler and the simulated upstream) during the run;
   * the embedded DynamoDB runs in a process of its own, off that CPU as DynamoDB is in AWS.
   */
  cpuMs: number;
  /** Per task: the run's AWS requests by service and operation. */
  requests: Record<string, number>;
  /** Tasks resubmitted (left `queued` for `submitted`) by that one run. */
  submitted: number;
  /** Jobs the simulated upstream holds, and tasks with more than one. */
  upstreamJobs: number;
  doubled: number;
  /** Tasks still queued after the run, and why the first of them is (its upstream message). */
  leftQueued: number;
  leftReason?: string;
  shards: number;
}

/**
 * `tasks` queued tasks whose resubmit time has come, spread over the due-index shards as
 * submits write them, then one reconcile run through the local stack (its handler, the
 * embedded DynamoDB in a process of its own, the simulated upstream over loopback): how long the run takes, and
 * whether it cleared them all with exactly one upstream job each.
 */
export async function measureReconcileScale(tasks: number): Promise<ReconcileScaleResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'vtg-reconcile-scale-'));
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  // Renders that outlast the run, so that no callback competes with the reconciler; no schedule of its own.
  const gw = await startLocalGateway({ dataDir, dynamodb: 'own-process', renderMs: 3600_000, reconcileEveryMs: 24 * 3600_000 });
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: gw.endpoints.dynamodb, region: 'us-east-1', credentials: localCredentials }));
  try {
    const now = Date.now();
    const items: TaskRecord[] = Array.from({ length: tasks }, (_, i) => {
      const task = taskRecord(now - tasks + i, { owner: 'scale-owner', prompt: `scale task ${i}`, submit_attempts: 1, due_at: now - 1000 });
      return { ...task, open: dueKey(task.id, DEFAULT_DUE_SHARDS) };
    });
    const seeded = Date.now();
    const batches = [];
    for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
    for (let i = 0; i < batches.length; i += 8)
      await Promise.all(
        batches.slice(i, i + 8).map(async (batch) => {
          let request = { [gw.tableName]: batch.map((t) => ({ PutRequest: { Item: { pk: `TASK#${t.id}`, ...t } } })) };
          while (Object.keys(request).length) {
            const { UnprocessedItems = {} } = await db.send(new BatchWriteCommand({ RequestItems: request }));
            request = UnprocessedItems as typeof request;
          }
        }),
      );
    const seedMs = Date.now() - seeded;

    const counting = countRequests(gw.endpoints, Number(new URL(gw.url).port));
    const cpuBefore = process.cpuUsage();
    const started = Date.now();
    await gw.reconcileNow();
    const reconcileMs = Date.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    counting.stop();
    const requests = Object.fromEntries([...counting.counter.requests].sort().map(([k, v]) => [k, v / tasks]));

    const states = new Map<string, string>();
    let leftReason: string | undefined;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await db.send(new ScanCommand({ TableName: gw.tableName, FilterExpression: 'begins_with(pk, :t)', ExpressionAttributeValues: { ':t': 'TASK#' }, ExclusiveStartKey: start }));
      for (const item of page.Items ?? []) {
        states.set(String(item.id), String(item.state));
        if (item.state === 'queued') leftReason ??= String(item.upstream_message ?? 'no upstream message');
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const jobsPerTask = new Map<string, number>();
    for (const job of gw.upstream.tasks.values()) {
      const taskId = /callbacks\/upstream\/([^?]+)/.exec(job.callback_url ?? '')?.[1] ?? '';
      jobsPerTask.set(taskId, (jobsPerTask.get(taskId) ?? 0) + 1);
    }
    return {
      tasks,
      seedMs,
      reconcileMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      requests,
      submitted: [...states.values()].filter((s) => s === 'submitted').length,
      upstreamJobs: gw.upstream.tasks.size,
      doubled: [...jobsPerTask.values()].filter((n) => n > 1).length,
      leftQueued: [...states.values()].filter((s) => s === 'queued').length,
      leftReason,
      shards: DEFAULT_DUE_SHARDS,
    };
  } finally {
    db.destroy();
    await gw.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function reconcileScaleReport(results: ReconcileScaleResult[]): string {
  const f = (n: number) => String(Number(n.toFixed(3)));
  const perTask = (r: ReconcileScaleResult) => Object.entries(r.requests).map(([op, n]) => `${f(n)} ${op.replace('DynamoDB ', '')}`).join(', ');
  const rows = results.map((r) => [
    String(r.tasks),
    `${(r.reconcileMs / 1000).toFixed(1)} s`,
    ((r.tasks / r.reconcileMs) * 1000).toFixed(0),
    `${(r.reconcileMs / r.tasks).toFixed(2)} ms`,
    `${(r.cpuMs / r.tasks).toFixed(2)} ms`,
    perTask(r),
    String(r.submitted),
    String(r.upstreamJobs),
    String(r.doubled),
    String(r.leftQueued),
  ]);
  const first = results[0];
  const last = results.at(-1);
  const dynamo = (r: ReconcileScaleResult) => Object.entries(r.requests).reduce((n, [k, v]) => (k.startsWith('DynamoDB ') ? n + v : n), 0);
  const flat =
    first && last && last.tasks > first.tasks
      ? `From ${first.tasks} to ${last.tasks} due tasks, per task: run time ${ratio(last.reconcileMs / last.tasks, first.reconcileMs / first.tasks)}, CPU ${ratio(last.cpuMs / last.tasks, first.cpuMs / first.tasks)}, DynamoDB requests ${ratio(dynamo(last), dynamo(first))}.`
      : '';
  return [
    `### One reconcile run over due tasks (${first?.shards ?? DEFAULT_DUE_SHARDS} shards, 32 tasks at a time)`,
    '',
    table(['due tasks', 'run', 'tasks/s', 'per task', 'CPU per task', 'DynamoDB per task', 'resubmitted', 'upstream jobs', 'tasks with 2+ jobs', 'left queued'], rows),
    '',
    "CPU: the gateway's process (reconciler and simulated upstream); the embedded DynamoDB runs in a process of its own, as DynamoDB is not on the reconcile Lambda's CPU in AWS.",
    flat,
    ...results.filter((r) => r.leftReason).map((r) => `Left queued after the ${r.tasks}-task run (due again, for the next run): ${r.leftQueued}, the first with "${r.leftReason}".`),
  ]
    .filter((l, i, all) => l !== '' || all[i - 1] !== '')
    .join('\n');
}
