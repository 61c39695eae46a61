/**
 * The operator console: a view over the gateway's public API (and, with an admin key, the
 * `/admin` API), nothing more. The key lives in this tab's session storage only; it is
 * never put in a URL or in local storage.
 */
import type { PublicModel, TaskView as BaseTaskView, UsageReport } from '../lambdas/shared/contracts/view';

/** The answers' shapes are the gateway's own contracts (types only: nothing of them is bundled). */
type TaskView = BaseTaskView & {
  /** With an admin key: the route attempts and the upstream that served the task. */
  attempts?: { upstream: string; at: number; outcome: string; message?: string }[];
  upstream?: string;
};
type UsageFigures = UsageReport['totals'];

interface UpstreamHealth {
  name: string;
  circuit: string;
  recent_error_rate?: number;
}

const KEY_SLOT = 'vtg.apiKey';
const REFRESH_MS = 2000;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const key = sessionStorage.getItem(KEY_SLOT) ?? '';
  const response = await fetch(path, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const message = (body as { error?: { message?: string } } | undefined)?.error?.message ?? `the gateway answered ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

const state = {
  models: [] as PublicModel[],
  selected: undefined as string | undefined,
  admin: false,
  timer: undefined as number | undefined,
};

function text(el: HTMLElement, value: string) {
  el.textContent = value;
}

function age(createdAt: number): string {
  const s = Math.max(0, Math.round(Date.now() / 1000 - createdAt));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function options(select: HTMLSelectElement, values: (string | number)[], chosen?: string | number) {
  select.replaceChildren(
    ...values.map((v) => {
      const option = document.createElement('option');
      option.value = String(v);
      option.textContent = String(v);
      option.selected = chosen !== undefined && String(v) === String(chosen);
      return option;
    }),
  );
}

function showModel(id: string) {
  const model = state.models.find((m) => m.id === id);
  if (!model) return;
  options($('duration'), model.durations, model.default_duration ?? model.durations[0]);
  options($('aspect-ratio'), model.aspect_ratios, model.default_aspect_ratio ?? model.aspect_ratios[0]);
}

async function signIn(key: string) {
  sessionStorage.setItem(KEY_SLOT, key);
  try {
    await api('/v1/videos/generations?limit=1');
  } catch (error) {
    sessionStorage.removeItem(KEY_SLOT);
    text($('sign-in-error'), error instanceof ApiError && error.status === 401 ? `That key was not accepted: ${error.message}` : (error as Error).message);
    return;
  }
  text($('sign-in-error'), '');
  ($('api-key') as HTMLInputElement).value = '';
  await enter();
}

async function enter() {
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  state.admin = await api('/admin/upstreams').then(
    () => true,
    () => false,
  );
  $('admin').hidden = !state.admin;
  const who = $('who');
  who.hidden = false;
  text(who, state.admin ? 'Signed in with an admin key: all tasks' : 'Signed in');
  try {
    state.models = (await api<{ data: PublicModel[] }>('/v1/models')).data;
  } catch (error) {
    text($('create-error'), `The model list could not be read: ${(error as Error).message}`);
  }
  options($('model'), state.models.map((m) => m.id), state.models[0]?.id);
  if (state.models[0]) showModel(state.models[0].id);
  await refresh();
  state.timer = window.setInterval(() => void refresh(), REFRESH_MS);
}

function signOut() {
  sessionStorage.removeItem(KEY_SLOT);
  window.clearInterval(state.timer);
  state.selected = undefined;
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('who').hidden = true;
  $('details').hidden = true;
  $('sign-in').hidden = false;
}

async function refresh() {
  try {
    const list = await api<{ data: TaskView[] }>(state.admin ? '/admin/tasks?limit=50' : '/v1/videos/generations?limit=50');
    renderTasks(list.data);
    if (state.selected) await renderDetails(state.selected);
    await renderUsage();
    if (state.admin) await renderUpstreams();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      text($('sign-in-error'), `Signed out: ${error.message}`);
    }
  }
}

function renderTasks(tasks: TaskView[]) {
  const body = $('tasks').querySelector('tbody')!;
  $('tasks-empty').hidden = tasks.length > 0;
  body.replaceChildren(
    ...tasks.map((t) => {
      const row = document.createElement('tr');
      row.setAttribute('aria-selected', String(t.id === state.selected));
      row.tabIndex = 0;
      const cells = [t.id, t.phase ?? t.status, '', t.model, age(t.created_at)];
      for (const [i, value] of cells.entries()) {
        const cell = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) cell.setAttribute('scope', 'row');
        if (i === 2) {
          const bar = document.createElement('progress');
          bar.max = 100;
          bar.value = t.progress;
          bar.setAttribute('aria-label', `progress ${t.progress}%`);
          cell.append(bar, ` ${t.progress}%`);
        } else cell.textContent = value;
        row.append(cell);
      }
      const select = () => {
        state.selected = t.id;
        for (const r of body.querySelectorAll('tr')) r.setAttribute('aria-selected', String(r === row));
        void renderDetails(t.id);
      };
      row.addEventListener('click', select);
      row.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') select();
      });
      return row;
    }),
  );
}

async function renderDetails(id: string) {
  const task = await api<TaskView>(state.admin ? `/admin/tasks/${encodeURIComponent(id)}` : `/v1/videos/generations/${encodeURIComponent(id)}`);
  $('details').hidden = false;
  text($('details-title'), `Task ${task.id}`);
  const fields: [string, string][] = [
    ['Status', task.phase && task.status === 'in_progress' ? `${task.status} (${task.phase})` : task.status],
    ['Progress', `${task.progress}%`],
    ['Model', task.model],
    ['Prompt', task.prompt],
    ['Duration', `${task.duration} s`],
    ['Aspect ratio', task.aspect_ratio],
    ['Created', new Date(task.created_at * 1000).toLocaleString()],
  ];
  if (task.upstream) fields.push(['Upstream', task.upstream]);
  if (task.video) {
    fields.push(['Size', `${task.video.bytes} bytes`], ['SHA-256', task.video.sha256]);
    if (task.video.duration_seconds !== undefined) fields.push(['Measured length', `${task.video.duration_seconds.toFixed(1)} s`]);
    if (task.video.width && task.video.height) fields.push(['Resolution', `${task.video.width}×${task.video.height}`]);
  }
  $('details-fields').replaceChildren(
    ...fields.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  text($('details-error'), task.error ? `Failed (${task.error.code}): ${task.error.message}` : '');
  const video = $('details-video') as HTMLVideoElement;
  const link = $('details-download') as HTMLAnchorElement;
  if (task.video) {
    // Presigned URLs are fresh on every read: keep the one already playing.
    if (video.dataset.task !== task.id) {
      video.dataset.task = task.id;
      video.src = task.video.url;
    }
    video.hidden = false;
    link.href = task.video.url;
    link.hidden = false;
  } else {
    video.removeAttribute('src');
    delete video.dataset.task;
    video.hidden = true;
    link.hidden = true;
  }
  if (state.admin) {
    $('attempts').replaceChildren(
      ...(task.attempts ?? []).map((a) => {
        const li = document.createElement('li');
        li.textContent = `${new Date(a.at).toLocaleTimeString()} ${a.upstream}: ${a.outcome}${a.message ? ` (${a.message})` : ''}`;
        return li;
      }),
    );
  }
}

/** A table body of plain text rows (cells are set as text, never as markup). */
function rows(table: HTMLElement, values: string[][]) {
  table.querySelector('tbody')!.replaceChildren(
    ...values.map((cells) => {
      const row = document.createElement('tr');
      for (const value of cells) {
        const cell = document.createElement('td');
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }),
  );
}

const money = (cost: number) => `$${cost.toFixed(2)}`;
const figures = (f: UsageFigures) => [String(f.tasks), String(f.succeeded), String(f.failed), `${f.delivered_seconds} s`, money(f.cost)];

function limitsLine({ limits: l, in_use: u }: UsageReport): string {
  const part = (limit: number | null, what: string, used?: string) => `${what}: ${limit ?? 'no limit'}${used ? ` (${used})` : ''}`;
  return `Limits — ${[
    part(l.concurrent, 'open tasks at once', `${u.open_tasks} open`),
    part(l.rpm, 'submits a minute'),
    part(l.seconds_per_day, 'seconds a day', `${u.seconds_today} s used`),
    part(l.seconds_per_month, 'seconds a month', `${u.seconds_this_month} s used`),
  ].join(' · ')}`;
}

async function renderUsage() {
  const summary = $('usage-summary');
  const byModel = $('usage-models');
  try {
    const usage = await api<UsageReport>('/v1/usage?group_by=model');
    const t = usage.totals;
    text(summary, `${t.tasks} tasks (${t.succeeded} succeeded, ${t.failed} failed), ${t.delivered_seconds} s of video delivered, ${money(t.cost)}`);
    text($('usage-limits'), limitsLine(usage));
    rows(byModel, usage.data.map((row) => [row.model ?? '', ...figures(row)]));
    byModel.hidden = usage.data.length === 0;
  } catch (error) {
    text(summary, `Usage is not available: ${(error as Error).message}`);
  }
}

async function renderUpstreams() {
  const { data } = await api<{ data: UpstreamHealth[] }>('/admin/upstreams');
  rows($('upstreams'), data.map((u) => [u.name, u.circuit, u.recent_error_rate === undefined ? '' : `${Math.round(u.recent_error_rate * 100)}%`]));
  const usage = await api<{ data: (UsageFigures & { key_id: string; name: string })[] }>('/admin/usage');
  rows($('key-usage'), usage.data.map((k) => [k.key_id, k.name, ...figures(k)]));
}

async function create(event: SubmitEvent) {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const data = new FormData(form);
  text($('create-error'), '');
  text($('create-result'), '');
  try {
    const { id } = await api<{ id: string }>('/v1/videos/generations', {
      method: 'POST',
      body: JSON.stringify({
        model: data.get('model'),
        prompt: data.get('prompt'),
        duration: Number(data.get('duration')),
        aspect_ratio: data.get('aspect-ratio'),
      }),
    });
    text($('create-result'), `Created ${id}`);
    state.selected = id;
    ($('prompt') as HTMLTextAreaElement).value = '';
    await refresh();
  } catch (error) {
    text($('create-error'), (error as Error).message);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void signIn(($('api-key') as HTMLInputElement).value.trim());
  });
  $('sign-out').addEventListener('click', signOut);
  $('model').addEventListener('change', (e) => showModel((e.target as HTMLSelectElement).value));
  $('create-form').addEventListener('submit', (e) => void create(e as SubmitEvent));
  if (sessionStorage.getItem(KEY_SLOT)) void enter();
});
