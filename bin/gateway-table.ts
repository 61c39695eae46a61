import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, ListTagsOfResourceCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EXIT, KeyAdminError, type KeyTarget } from '../lambdas/shared/key-admin';
import { DataDirError, lockDataDir, processAlive, readDataFile, type DataDirLock } from '../local/data-dir';
import { ENDPOINTS_FILE, INSTANCE_TAG, localEndpointsSchema, type LocalEndpoints } from '../local/endpoints';
import { LOCAL_TABLE } from '../local/names';

/**
 * The gateway's table for the operator commands (`npm run keys`, `npm run tasks`), local
 * or deployed.
 *
 * Local (the default): the local gateway keeps its table in dynalite, whose LevelDB under
 * `DATA_DIR/dynamodb` only one process can open. While `npm start` runs it publishes its
 * DynamoDB endpoint in `DATA_DIR/endpoints.json`, and the command talks to that once it has
 * checked that the process named there is alive and that the table at that endpoint carries
 * the same instance tag (a port of a dead gateway may now be another's). With no gateway
 * running, it locks the data directory and opens it itself, in its own dynalite, for the
 * few milliseconds the command takes. Deployed: the real AWS SDK with the default
 * credential chain, on the table named by the stack's `TableName` output (or `--table`).
 */

// The pinned SDK supports Node 20; its notice about later releases is not the operator's concern here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** dynalite accepts any credentials; these are the local runtime's. */
const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface OpenedTable {
  db: DynamoDBDocumentClient;
  table: string;
  /** Which table, in words, for the command's messages. */
  description: string;
  local: boolean;
  close(): Promise<void>;
}

const documentClient = (client: DynamoDBClient) =>
  DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });

function localClient(endpoint: string) {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    // A stale endpoints.json may point at a port nobody (or something else) listens on.
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 5_000 },
  });
}

/** Whether the table is there: `missing` when DynamoDB answers without it, `unreachable` when nothing answers. */
async function tableState(client: DynamoDBClient, table: string): Promise<'ok' | 'missing' | 'unreachable'> {
  try {
    await client.send(new DescribeTableCommand({ TableName: table }));
    return 'ok';
  } catch (error) {
    return (error as Error).name === 'ResourceNotFoundException' ? 'missing' : 'unreachable';
  }
}

/** endpoints.json, when it names a live process; a malformed one is as good as none (the lock still guards the data). */
function readLocalEndpoints(dataDir: string): LocalEndpoints | undefined {
  let endpoints: LocalEndpoints | undefined;
  try {
    endpoints = readDataFile(join(dataDir, ENDPOINTS_FILE), localEndpointsSchema, '');
  } catch (error) {
    if (error instanceof DataDirError) return undefined;
    throw error;
  }
  return endpoints && processAlive(endpoints.pid) ? endpoints : undefined;
}

/** Whether the table at this endpoint is the one the gateway of endpoints.json tagged. */
async function sameInstance(client: DynamoDBClient, endpoints: LocalEndpoints): Promise<boolean> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: endpoints.tableName }));
    const { Tags = [] } = await client.send(new ListTagsOfResourceCommand({ ResourceArn: Table!.TableArn! }));
    return Tags.some((t) => t.Key === INSTANCE_TAG && t.Value === endpoints.instance);
  } catch {
    return false;
  }
}

/**
 * dynalite opens its LevelDB lazily and crashes the process on the first request when the
 * directory is locked, so try the lock first with dynalite's own `level`.
 */
async function assertUnlocked(dbDir: string, dataDir: string): Promise<void> {
  const requireFromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  const { Level } = requireFromDynalite('level') as {
    Level: new (path: string, options: object) => { open(): Promise<void>; close(): Promise<void> };
  };
  const db = new Level(dbDir, { createIfMissing: false });
  try {
    await db.open();
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED')
      throw new KeyAdminError(
        EXIT.failed,
        `the local data in ${dataDir} is open in another process (a running \`npm start\`?) that did not publish ` +
          `its DynamoDB endpoint in ${join(dataDir, 'endpoints.json')}; stop that process and run this again`,
      );
    throw new KeyAdminError(EXIT.failed, `cannot open the local data in ${dbDir}: ${cause?.message ?? (error as Error).message}`);
  }
  await db.close();
}

export async function openLocal(dataDirOption: string): Promise<OpenedTable> {
  const dataDir = resolve(dataDirOption);
  const running = readLocalEndpoints(dataDir);
  if (running) {
    const client = localClient(running.dynamodb);
    if (await sameInstance(client, running)) {
      return {
        db: documentClient(client),
        table: running.tableName,
        description: `the running local gateway at ${running.url} (data in ${dataDir})`,
        local: true,
        close: async () => client.destroy(),
      };
    }
    client.destroy();
  }

  const dbDir = join(dataDir, 'dynamodb');
  if (!existsSync(join(dbDir, 'CURRENT')))
    throw KeyAdminError.notFound(`no local gateway data in ${dataDir}: run \`npm start\` once first, or pass --data-dir`);
  let lock: DataDirLock;
  try {
    lock = lockDataDir(dataDir, 'npm run keys (or tasks)');
  } catch (error) {
    if (!(error instanceof DataDirError)) throw error;
    const published = running ? `; its ${ENDPOINTS_FILE} names ${running.dynamodb}, which is not its DynamoDB (another gateway's?)` : '';
    throw new KeyAdminError(EXIT.failed, `${error.message.replace(/ Stop that one.*$/, '')}${published}. Run this again once it has started, or stop it.`);
  }
  try {
    return await openLocalData(dataDir, dbDir, lock);
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function openLocalData(dataDir: string, dbDir: string, lock: DataDirLock): Promise<OpenedTable> {
  await assertUnlocked(dbDir, dataDir);
  const { default: dynalite } = await import('dynalite');
  const server = dynalite({ path: dbDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const client = localClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const close = async () => {
    client.destroy();
    await new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
    lock.release();
  };
  const table = LOCAL_TABLE;
  if ((await tableState(client, table)) !== 'ok') {
    await close();
    throw KeyAdminError.notFound(`no table ${table} in the local data in ${dataDir}: run \`npm start\` once first`);
  }
  return {
    db: documentClient(client),
    table,
    description: `the local gateway's table (data in ${dataDir}; gateway not running)`,
    local: true,
    close,
  };
}

export async function openAws(target: Extract<KeyTarget, { kind: 'aws' }>): Promise<OpenedTable> {
  let table = target.table;
  let where: string;
  const cleanup: (() => void)[] = [];
  if (table === undefined) {
    const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
    const cfn = new CloudFormationClient({ region: target.region });
    cleanup.push(() => cfn.destroy());
    try {
      const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: target.stack }));
      const stack = Stacks?.[0];
      table = stack?.Outputs?.find((o) => o.OutputKey === 'TableName')?.OutputValue;
      if (!table)
        throw KeyAdminError.notFound(`stack ${target.stack} has no TableName output (status ${stack?.StackStatus ?? 'unknown'})`);
      where = `table ${table} of stack ${target.stack} (${await cfn.config.region()})`;
    } catch (error) {
      cleanup.forEach((c) => c());
      if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message))
        throw KeyAdminError.notFound(`stack ${target.stack} does not exist in ${await regionOf(cfn)}`);
      throw error;
    }
  }
  const client = new DynamoDBClient({ region: target.region, endpoint: target.endpoint });
  where ??= `table ${table} (${await regionOf(client)})`;
  return {
    db: documentClient(client),
    table,
    description: where,
    local: false,
    close: async () => {
      client.destroy();
      cleanup.forEach((c) => c());
    },
  };
}

const regionOf = async (client: { config: { region: () => Promise<string> } }) =>
  client.config.region().catch(() => 'the default region');

/** AWS SDK failures in words a person can act on. */
export function explain(error: unknown): KeyAdminError {
  if (error instanceof KeyAdminError) return error;
  const { name, message } = error as Error;
  if (name === 'ResourceNotFoundException') return KeyAdminError.notFound(`the table does not exist: ${message}`);
  if (name === 'CredentialsProviderError' || /credential/i.test(message))
    return new KeyAdminError(EXIT.failed, `no AWS credentials: ${message} (configure them as for the AWS CLI, e.g. AWS_PROFILE)`);
  if (/region is missing/i.test(message)) return new KeyAdminError(EXIT.failed, 'no AWS region: pass --region or set AWS_REGION');
  return new KeyAdminError(EXIT.failed, `${name}: ${message}`);
}


/** The local data directory or the deployed table the target names. */
export const openTable = (target: KeyTarget): Promise<OpenedTable> =>
  target.kind === 'local' ? openLocal(target.dataDir) : openAws(target);

export interface OperatorIo {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: OperatorIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * One operator command (`npm run keys`, `npm run tasks`): parse, open the table it names,
 * run, print text or `--json`, close; errors as one line (with the help on a usage error).
 * Returns the exit code.
 */
export async function runOperatorCommand<C extends { action: string }>(
  argv: string[],
  io: OperatorIo,
  cli: {
    name: string;
    help: string;
    parse(argv: string[]): { command: C; target: KeyTarget; json: boolean };
    run(command: Exclude<C, { action: 'help' }>, opened: OpenedTable): Promise<{ text: string; data: unknown }>;
  },
): Promise<number> {
  const json = argv.includes('--json');
  const report = (error: KeyAdminError) => {
    if (json) io.err(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
    else io.err(`${cli.name}: ${error.message}\n${error.exitCode === EXIT.usage ? `\n${cli.help}` : ''}`);
    return error.exitCode;
  };
  let invocation;
  try {
    invocation = cli.parse(argv);
  } catch (error) {
    return report(explain(error));
  }
  const { command, target } = invocation;
  if (command.action === 'help') {
    io.out(cli.help);
    return EXIT.ok;
  }
  let opened: OpenedTable | undefined;
  try {
    opened = await openTable(target);
    const result = await cli.run(command as Exclude<C, { action: 'help' }>, opened);
    io.out(invocation.json ? `${JSON.stringify(result.data, null, 2)}\n` : result.text);
    return EXIT.ok;
  } catch (error) {
    return report(explain(error));
  } finally {
    await opened?.close();
  }
}
