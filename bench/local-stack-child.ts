import './quiet-logs';
import { measureReconcileScale } from './reconcile-scale';
import { measureTaskCost, type CostRun } from './task-cost';

/**
 * One measurement through the local stack, in a process of its own (`measureInOwnProcess`):
 * the gateway's modules keep one DynamoDB client per process, bound to the first embedded
 * DynamoDB started, so a second local gateway in the same process cannot be reached.
 */
export type LocalStackJob = { reconcile: number } | { flows: CostRun[] };

const job = JSON.parse(process.argv[2] ?? '{}') as LocalStackJob;
const result = 'reconcile' in job ? await measureReconcileScale(job.reconcile) : await measureTaskCost(job.flows);
process.stdout.write(`${JSON.stringify(result)}\n`);
