import { parseArgs } from 'node:util';
import { keyId, type ApiKeyStore } from './api-keys';
import type { TaskRecord } from './contracts/task';
import { isTaskId } from './ids';
import { KeyAdminError, parseTarget, type KeyTarget } from './key-admin';
import type { TaskStore } from './task-store';

/**
 * `npm run tasks`: what an operator needs to see of tasks, which clients never see: the
 * upstream holding each task's job, the route that serves it, the upstream's model id and
 * job id, and every route attempt with its outcome. `bin/tasks.ts` finds the table (local
 * gateway or deployed stack) as `npm run keys` does.
 */

export type TaskCommand =
  | { action: 'help' }
  | { action: 'show'; id: string }
  | { action: 'list'; key?: string; limit: number };

export interface TaskInvocation {
  command: TaskCommand;
  target: KeyTarget;
  json: boolean;
}

export const tasksHelp = `Look at the gateway's tasks as an operator: upstreams, routes, attempts.

Usage:
  npm run tasks -- show TASK_ID [target] [--json]
  npm run tasks -- list [--key KEY_ID] [--limit N] [target] [--json]

Commands:
  show TASK_ID         One task: its state, the upstream and route that serve it, the
                       upstream's model id and job id, every route attempt (time,
                       upstream, outcome, message), its error, video and webhook.
  list                 Tasks the gateway still owes work to (queued, running, archiving,
                       webhook unsent), soonest due first; with --key KEY_ID, that key's
                       tasks, newest first (KEY_ID as \`npm run keys -- list\` shows it).
  --limit N            At most N tasks (default 50, at most 1000).

Target (default: the local gateway in .data): --data-dir DIR, --aws, --stack NAME,
--stage STAGE, --table NAME, --region REGION, --endpoint URL, as for \`npm run keys\`.

Exit codes: 0 done, 1 usage error, 2 not found (task, key, stack, table or local data),
3 the table could not be reached.
`;

/** Read the command line (the words after `npm run tasks --`). Throws a usage error. */
export function parseTaskArgs(argv: string[]): TaskInvocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        key: { type: 'string' },
        limit: { type: 'string' },
        'data-dir': { type: 'string' },
        aws: { type: 'boolean' },
        stack: { type: 'string' },
        stage: { type: 'string' },
        table: { type: 'string' },
        region: { type: 'string' },
        endpoint: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw KeyAdminError.usage((error as Error).message.split('\n')[0]!);
  }
  const { values: v, positionals } = parsed;
  const json = v.json === true;
  const [action, ...rest] = positionals;
  if (v.help || action === 'help') return { command: { action: 'help' }, target: { kind: 'local', dataDir: '.data' }, json };
  const target = parseTarget(v);
  switch (action) {
    case undefined:
      throw KeyAdminError.usage('name a command: show or list');
    case 'show': {
      if (v.key !== undefined || v.limit !== undefined) throw KeyAdminError.usage('--key and --limit are for list');
      if (rest.length !== 1) throw KeyAdminError.usage('show needs exactly one TASK_ID');
      const id = rest[0]!.trim();
      if (!isTaskId(id)) throw KeyAdminError.usage(`"${rest[0]}" is not a task id (task_…)`);
      return { command: { action: 'show', id }, target, json };
    }
    case 'list': {
      if (rest.length) throw KeyAdminError.usage(`list takes no arguments (got "${rest.join(' ')}")`);
      const limit = v.limit === undefined ? 50 : Number(v.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw KeyAdminError.usage('--limit is a whole number from 1 to 1000');
      const key = v.key?.trim().toLowerCase();
      if (key !== undefined && !/^[0-9a-f]{12}$/.test(key)) throw KeyAdminError.usage('--key takes the 12-character key id that `npm run keys -- list` shows');
      return { command: { action: 'list', key, limit }, target, json };
    }
    default:
      throw KeyAdminError.usage(`unknown command "${action}": use show or list`);
  }
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** Where the task is, in the operator's terms. Older records have no `upstream`: theirs is the default one. */
export function operatorView(task: TaskRecord) {
  return {
    id: task.id,
    key_id: keyId(task.owner),
    state: task.state,
    model: task.model,
    upstream: task.upstream ?? null,
    route: task.route ?? null,
    upstream_model: task.upstream_model,
    upstream_job: task.upstream_id ?? null,
    upstream_message: task.upstream_message ?? null,
    upstream_cost: task.upstream_cost ?? null,
    progress: task.progress,
    submit_attempts: task.submit_attempts,
    attempts: (task.attempts ?? []).map((a) => ({ at: iso(a.at)!, upstream: a.upstream, outcome: a.outcome, message: a.message ?? null })),
    polls: task.poll_count ?? 0,
    created_at: iso(task.created_at)!,
    updated_at: iso(task.updated_at)!,
    deadline_at: iso(task.deadline_at)!,
    completed_at: iso(task.completed_at),
    next_check_at: iso(task.due_at),
    error: task.error_code ? { code: task.error_code, message: task.error_message ?? '' } : null,
    video: task.video_key ? { key: task.video_key, bytes: task.video_bytes ?? null, sha256: task.video_sha256 ?? null } : null,
    webhook: task.callback_url ? { url: task.callback_url, status: task.notify_status ?? null, attempts: task.notify_attempts ?? 0 } : null,
  };
}
export type OperatorTaskView = ReturnType<typeof operatorView>;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const upstreamWords = (v: OperatorTaskView) => (v.upstream ?? '(default upstream)') + (v.route === null ? '' : ` (route ${v.route})`);

function showText(v: OperatorTaskView): string {
  const lines = [
    `Task ${v.id}  ${v.state}  (key ${v.key_id})`,
    `  model           ${v.model}`,
    `  upstream        ${upstreamWords(v)}`,
    `  upstream model  ${v.upstream_model}`,
    `  upstream job    ${v.upstream_job ?? '(none yet)'}`,
    ...(v.upstream_message ? [`  last word       ${v.upstream_message}`] : []),
    ...(v.upstream_cost === null ? [] : [`  upstream cost   ${v.upstream_cost} USD (as the upstream reports it)`]),
    `  progress        ${v.progress}%${v.polls ? `, ${v.polls} polls` : ''}`,
    `  created         ${v.created_at}   deadline ${v.deadline_at}`,
    `  updated         ${v.updated_at}${v.next_check_at ? `   next check ${v.next_check_at}` : ''}`,
    ...(v.completed_at ? [`  completed       ${v.completed_at}`] : []),
    ...(v.error ? [`  error           ${v.error.code}: ${v.error.message}`] : []),
    ...(v.video ? [`  video           ${v.video.key} (${v.video.bytes} bytes, sha256 ${v.video.sha256})`] : []),
    ...(v.webhook ? [`  webhook         ${v.webhook.url}: ${v.webhook.status ?? 'not yet'} after ${v.webhook.attempts} attempts`] : []),
    '',
  ];
  if (v.attempts.length === 0) lines.push('No route attempts recorded.');
  else
    lines.push(
      `Route attempts (${v.attempts.length}):`,
      table([['  AT', 'UPSTREAM', 'OUTCOME', 'MESSAGE'], ...v.attempts.map((a) => [`  ${a.at}`, a.upstream, a.outcome, a.message ?? ''])]),
    );
  return `${lines.join('\n')}\n`;
}

function listText(views: OperatorTaskView[], what: string): string {
  if (views.length === 0) return `No ${what}.\n`;
  const rows = [
    ['ID', 'STATE', 'MODEL', 'UPSTREAM', 'ATTEMPTS', 'UPDATED'],
    ...views.map((v) => [v.id, v.state, v.model, upstreamWords(v), String(v.attempts.length), v.updated_at]),
  ];
  return `${table(rows)}\n\n${views.length} ${what}.\n`;
}

/** Run one command against the task table. */
export async function runTaskCommand(
  command: Exclude<TaskCommand, { action: 'help' }>,
  stores: { tasks: Pick<TaskStore, 'get' | 'openTasks' | 'listByOwner'>; keys: Pick<ApiKeyStore, 'list'> },
  where: { description: string },
): Promise<{ text: string; data: Record<string, unknown> }> {
  if (command.action === 'show') {
    const task = await stores.tasks.get(command.id);
    if (!task) throw KeyAdminError.notFound(`no task ${command.id} in ${where.description}`);
    const view = operatorView(task);
    return { text: showText(view), data: { ...view, target: where.description } };
  }
  if (command.key) {
    const matches = (await stores.keys.list()).filter((k) => k.key_hash.startsWith(command.key!));
    if (matches.length !== 1) throw KeyAdminError.notFound(`no key with id ${command.key} in ${where.description} (\`npm run keys -- list\` shows the ids)`);
    const { tasks } = await stores.tasks.listByOwner(matches[0]!.key_hash, command.limit);
    const views = tasks.map(operatorView);
    return { text: listText(views, `tasks of key ${command.key} in ${where.description}`), data: { target: where.description, tasks: views } };
  }
  const views = (await stores.tasks.openTasks(command.limit)).map(operatorView);
  return { text: listText(views, `open tasks in ${where.description}`), data: { target: where.description, tasks: views } };
}
