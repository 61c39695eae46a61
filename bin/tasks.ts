import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ApiKeyStore } from '../lambdas/shared/api-keys';
import { EXIT, type KeyAdminError } from '../lambdas/shared/key-admin';
import { parseTaskArgs, runTaskCommand, tasksHelp } from '../lambdas/shared/task-admin';
import { TaskStore } from '../lambdas/shared/task-store';
import { explain, openTable, type OpenedTable } from './gateway-table';

/**
 * `npm run tasks -- show|list`: tasks of the local gateway or of a deployed stack, with what
 * only operators see (upstream names, routes, upstream model ids, attempts).
 */

export interface TasksIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: TasksIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** The command: its arguments in, its output to `io`, its exit code back. */
export async function main(argv: string[], io: TasksIo = stdio): Promise<number> {
  const json = argv.includes('--json');
  const report = (error: KeyAdminError) => {
    if (json) io.err(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
    else io.err(`tasks: ${error.message}\n${error.exitCode === EXIT.usage ? `\n${tasksHelp}` : ''}`);
    return error.exitCode;
  };
  let invocation;
  try {
    invocation = parseTaskArgs(argv);
  } catch (error) {
    return report(explain(error));
  }
  const { command, target } = invocation;
  if (command.action === 'help') {
    io.out(tasksHelp);
    return EXIT.ok;
  }
  let opened: OpenedTable | undefined;
  try {
    opened = await openTable(target);
    const stores = { tasks: new TaskStore(opened.db, opened.table), keys: new ApiKeyStore(opened.db, opened.table, 0) };
    const result = await runTaskCommand(command, stores, opened);
    io.out(invocation.json ? `${JSON.stringify(result.data, null, 2)}\n` : result.text);
    return EXIT.ok;
  } catch (error) {
    return report(explain(error));
  } finally {
    await opened?.close();
  }
}

const entry = process.argv[1];
if (entry && existsSync(entry) && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
