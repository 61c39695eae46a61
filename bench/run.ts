// First: the gateway's logger reads its level when its module loads, which the imports below do.
import './quiet-logs';
import os from 'node:os';
import { archiveReport, measureArchive } from './archive';
import { coldStartReport, measureColdStart } from './coldstart';
import { MiB, benchDir, lastJson, machine, progress, runChild } from './lib';
import { join } from 'node:path';
import type { LocalStackJob } from './local-stack-child';
import { reconcileScaleReport, type ReconcileScaleResult } from './reconcile-scale';
import { measureSubmit, submitReport } from './submit';
import { taskCostFlatness, taskCostReport, type TaskCost } from './task-cost';

/**
 * `npm run bench [-- --only=coldstart|archive|submit|cost|scale[,…]] [-- --quick] [-- --scale]`:
 * each figure beside a baseline measured in the same run, printed as markdown tables on
 * stdout (progress goes to stderr). `--scale` adds the backlog measurements (1,000 and
 * 10,000 due tasks through one reconcile run), which take a few minutes.
 */
const parts = ['coldstart', 'archive', 'submit', 'cost', 'scale'] as const;
type Part = (typeof parts)[number];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only='));
const scale = args.includes('--scale');
const only = onlyArg ? onlyArg.slice('--only='.length).split(',') : parts.filter((p) => p !== 'scale' || scale);
const unknown = only.filter((p) => !(parts as readonly string[]).includes(p));
if (unknown.length || args.some((a) => a !== '--quick' && a !== '--scale' && !a.startsWith('--only='))) {
  process.stderr.write(`usage: npm run bench -- [--only=${parts.join('|')}[,…]] [--quick] [--scale]\n`);
  process.exit(2);
}
const selected = (p: Part) => only.includes(p);

// Lambda's nodejs22.x never prints the SDK's "Node < 22" notice; neither should this machine.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const started = Date.now();
const out: string[] = [`## Benchmarks${quick ? ' (--quick)' : ''}`, '', `Machine: ${machine()}.`, ''];

/** A local-stack measurement in a child process of its own (see local-stack-child.ts). */
async function inOwnProcess<T>(job: LocalStackJob): Promise<T> {
  const result = await runChild(process.execPath, ['--import', 'tsx', join(benchDir, 'local-stack-child.ts'), JSON.stringify(job)], { timeoutMs: 3600_000 });
  return lastJson<T>(result, `local stack ${JSON.stringify(job)}`);
}

async function section(name: Part, run: () => Promise<string>) {
  if (!selected(name)) return;
  const t = Date.now();
  const report = await run();
  out.push(report, `_${name}: ${((Date.now() - t) / 1000).toFixed(0)} s; load average after: ${load()}._`, '');
}

await section('coldstart', async () =>
  coldStartReport(await measureColdStart(quick ? { runs: 10, profileRuns: 2, plainMode: false } : { runs: 31, profileRuns: 2 })),
);
await section('archive', async () =>
  archiveReport(await measureArchive(quick ? { sizes: [100 * MiB], runs: 1 } : { sizes: [100 * MiB, 1024 * MiB], runs: 2 })),
);
const submitOptions = quick ? { seconds: 5, warmupSeconds: 1 } : { seconds: 10, warmupSeconds: 2 };
await section('submit', async () => submitReport(await measureSubmit(submitOptions), submitOptions));
await section('cost', async () => {
  const tasks = quick ? 5 : 20;
  return taskCostReport(await inOwnProcess<TaskCost[]>({ flows: [{ kind: 'callback', tasks }, { kind: 'pollOnly', tasks }] }));
});
await section('scale', async () => {
  const results = [];
  for (const tasks of quick ? [1000] : [1000, 10_000]) {
    progress(`reconcile over ${tasks} due tasks`);
    results.push(await inOwnProcess<ReconcileScaleResult>({ reconcile: tasks }));
  }
  // Whole tasks at scale: the requests and time per task stay flat from 1,000 to 10,000.
  progress('whole tasks: 1,000 with callbacks, 1,000 and 10,000 poll-only');
  const flows = await inOwnProcess<TaskCost[]>({
    flows: quick ? [{ kind: 'callback', tasks: 200 }, { kind: 'pollOnly', tasks: 1000 }] : [{ kind: 'callback', tasks: 1000 }, { kind: 'pollOnly', tasks: 1000 }, { kind: 'pollOnly', tasks: 10_000 }],
  });
  return [reconcileScaleReport(results), taskCostReport(flows), taskCostFlatness(flows)].filter(Boolean).join('\n\n');
});

out.push(`Total: ${((Date.now() - started) / 1000).toFixed(0)} s.`);
process.stdout.write(`${out.join('\n')}\n`);
progress('done');
