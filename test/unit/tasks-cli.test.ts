import { describe, expect, it } from 'vitest';
import { EXIT } from '../../lambdas/shared/key-admin';
import { operatorView, parseTaskArgs, runTaskCommand } from '../../lambdas/shared/task-admin';
import { main } from '../../bin/tasks';
import { taskRecord } from '../fixtures/task';

const T0 = Date.UTC(2026, 11, 2, 12);
const owner = 'ab12cd34ef56'.padEnd(64, '0');
const served = taskRecord(T0, {
  owner,
  state: 'in_progress',
  upstream: 'reseller-b',
  route: 1,
  upstream_model: 'doubao-seedance-2-0-pro',
  upstream_id: 'video_77',
  attempts: [
    { upstream: 'reseller-a', at: T0 + 10, outcome: 'unavailable', message: 'upstream answered 503: overloaded' },
    { upstream: 'reseller-b', at: T0 + 20, outcome: 'submitted' },
  ],
});
const older = taskRecord(T0 - 1000, { owner, upstream_model: 'sora-2' });

const stores = {
  tasks: {
    get: async (id: string) => [served, older].find((t) => t.id === id),
    openTasks: async (limit: number) => [older, served].slice(0, limit),
    listByOwner: async (hash: string, limit: number) => ({ tasks: hash === owner ? [served, older].slice(0, limit) : [], hasMore: false }),
  },
  keys: { list: async () => [{ key_hash: owner, name: 'ops', webhook_secret: 'whsec_x', created_at: T0 }] },
};
const where = { description: 'the test table' };

describe('npm run tasks', () => {
  it('show: the upstream and route serving the task, the upstream model id and job, every attempt', async () => {
    const { text, data } = await runTaskCommand({ action: 'show', id: served.id }, stores, where);
    expect(text).toContain(`Task ${served.id}  in_progress  (key ab12cd34ef56)`);
    expect(text).toMatch(/upstream +reseller-b \(route 1\)/);
    expect(text).toMatch(/upstream model +doubao-seedance-2-0-pro/);
    expect(text).toMatch(/upstream job +video_77/);
    expect(text).toMatch(/reseller-a +unavailable +upstream answered 503: overloaded/);
    expect(text).toMatch(/reseller-b +submitted/);
    expect(data).toMatchObject({
      upstream: 'reseller-b',
      route: 1,
      attempts: [
        { at: new Date(T0 + 10).toISOString(), upstream: 'reseller-a', outcome: 'unavailable' },
        { at: new Date(T0 + 20).toISOString(), upstream: 'reseller-b', outcome: 'submitted', message: null },
      ],
    });
  });

  it('show: a task recorded before routing belongs to the default upstream', async () => {
    const { text } = await runTaskCommand({ action: 'show', id: older.id }, stores, where);
    expect(text).toMatch(/upstream +\(default upstream\)/);
    expect(text).toContain('No route attempts recorded.');
    expect(operatorView(older)).toMatchObject({ upstream: null, route: null, attempts: [] });
  });

  it('list: open tasks, or one key\'s tasks, one line each with the upstream', async () => {
    const open = await runTaskCommand({ action: 'list', limit: 50 }, stores, where);
    expect(open.text.split('\n')[0]).toMatch(/^ID +STATE +MODEL +UPSTREAM +ATTEMPTS +UPDATED$/);
    expect(open.text).toContain('reseller-b (route 1)');
    expect(open.text).toContain('2 open tasks in the test table.');
    const mine = await runTaskCommand({ action: 'list', key: 'ab12cd34ef56', limit: 1 }, stores, where);
    expect((mine.data.tasks as unknown[]).length).toBe(1);
    await expect(runTaskCommand({ action: 'list', key: '000000000000', limit: 5 }, stores, where)).rejects.toThrow(/no key with id 000000000000/);
  });

  it('an unknown task is "not found"', async () => {
    await expect(runTaskCommand({ action: 'show', id: 'task_01kb2v6q5x0x7k1m3n4p5q6r7s' }, stores, where)).rejects.toMatchObject({ exitCode: EXIT.notFound });
  });

  it('reads its command line like npm run keys, and refuses what it cannot use', () => {
    expect(parseTaskArgs(['show', served.id, '--aws', '--region', 'eu-west-1'])).toEqual({
      command: { action: 'show', id: served.id },
      target: { kind: 'aws', stack: 'VideoTaskGateway', region: 'eu-west-1' },
      json: false,
    });
    expect(parseTaskArgs(['list', '--key', 'AB12CD34EF56', '--limit', '5', '--data-dir', '/tmp/x', '--json'])).toEqual({
      command: { action: 'list', key: 'ab12cd34ef56', limit: 5 },
      target: { kind: 'local', dataDir: '/tmp/x' },
      json: true,
    });
    expect(() => parseTaskArgs(['show', 'nope'])).toThrow(/not a task id/);
    expect(() => parseTaskArgs(['list', '--limit', '0'])).toThrow(/--limit/);
    expect(() => parseTaskArgs(['list', '--key', 'xyz'])).toThrow(/--key/);
    expect(() => parseTaskArgs(['remove'])).toThrow(/unknown command/);
  });

  it('a usage error exits 1 with the help; no local data exits 2', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) };
    expect(await main(['frobnicate'], io)).toBe(EXIT.usage);
    expect(err.join('')).toContain('npm run tasks -- show TASK_ID');
    expect(await main(['list', '--data-dir', '/nonexistent/vtg-data'], io)).toBe(EXIT.notFound);
    expect(err.join('')).toContain('no local gateway data in /nonexistent/vtg-data');
  });
});
