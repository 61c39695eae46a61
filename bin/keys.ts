import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ApiKeyStore } from '../lambdas/shared/api-keys';
import { keysHelp, parseKeyArgs, runKeyCommand } from '../lambdas/shared/key-admin';
import { runOperatorCommand, stdio, type OperatorIo } from './gateway-table';

/**
 * `npm run keys -- create|list|show|set|revoke|limits`: API keys of the local gateway or of
 * a deployed stack (`bin/gateway-table.ts` finds the table).
 */

export type KeysIo = OperatorIo;

/** The command: its arguments in, its output to `io`, its exit code back. */
export const main = (argv: string[], io: KeysIo = stdio): Promise<number> =>
  runOperatorCommand(argv, io, {
    name: 'keys',
    help: keysHelp,
    parse: parseKeyArgs,
    run: (command, opened) => runKeyCommand(command, new ApiKeyStore(opened.db, opened.table, 0), opened),
  });

const entry = process.argv[1];
if (entry && existsSync(entry) && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
