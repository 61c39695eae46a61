import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ApiKeyStore } from '../lambdas/shared/api-keys';
import { parseTaskArgs, runTaskCommand, tasksHelp } from '../lambdas/shared/task-admin';
import { TaskStore } from '../lambdas/shared/task-store';
import { runOperatorCommand, stdio, type OperatorIo } from './gateway-table';

/**
 * `npm run tasks -- show|list`: tasks of the local gateway or of a deployed stack, with what
 * only operators see (upstream names, routes, upstream model ids, attempts).
 */

export type TasksIo = OperatorIo;

/** The command: its arguments in, its output to `io`, its exit code back. */
export const main = (argv: string[], io: TasksIo = stdio): Promise<number> =>
  runOperatorCommand(argv, io, {
    name: 'tasks',
    help: tasksHelp,
    parse: parseTaskArgs,
    run: (command, opened) =>
      runTaskCommand(command, { tasks: new TaskStore(opened.db, opened.table), keys: new ApiKeyStore(opened.db, opened.table, 0) }, opened),
  });

const entry = process.argv[1];
if (entry && existsSync(entry) && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
