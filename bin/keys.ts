import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ApiKeyStore } from '../lambdas/shared/api-keys';
import { EXIT, KeyAdminError, keysHelp, parseKeyArgs, runKeyCommand } from '../lambdas/shared/key-admin';
import { explain, openTable, type OpenedTable } from './gateway-table';

/**
 * `npm run keys -- create|list|revoke`: API keys of the local gateway or of a deployed stack
 * (`bin/gateway-table.ts` finds the table).
 */

export interface KeysIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: KeysIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** The command: its arguments in, its output to `io`, its exit code back. */
export async function main(argv: string[], io: KeysIo = stdio): Promise<number> {
  const json = argv.includes('--json');
  const report = (error: KeyAdminError) => {
    if (json) io.err(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
    else io.err(`keys: ${error.message}\n${error.exitCode === EXIT.usage ? `\n${keysHelp}` : ''}`);
    return error.exitCode;
  };

  let invocation;
  try {
    invocation = parseKeyArgs(argv);
  } catch (error) {
    return report(explain(error));
  }
  const { command, target } = invocation;
  if (command.action === 'help') {
    io.out(keysHelp);
    return EXIT.ok;
  }

  let opened: OpenedTable | undefined;
  try {
    opened = await openTable(target);
    const result = await runKeyCommand(command, new ApiKeyStore(opened.db, opened.table, 0), opened);
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
