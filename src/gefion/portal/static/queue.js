// The queue page: pending and running jobs (GET /v1/queue) with reasons, ETAs and priority,
// filters kept in the address, hold/release/cancel where the principal may, and the jobs
// that ended while the page was open (GET /v1/jobs/{id} once each).
import {
  api, el, live, whoami, mayChange, announce, showProblem, clock, timeEl, duration,
  stateBadge, hostlist, serverNow, factor,
} from './lib.js';

const form = document.getElementById('filters');
const body = document.querySelector('#queue tbody');
const endedBody = document.querySelector('#ended tbody');
const count = document.getElementById('queue-count');
const dialog = document.getElementById('confirm');

let who = null;
let jobs = [];
let priorities = new Map(); // job id → stored priority factors of a pending job
const seen = new Map(); // job id → its row, for the jobs in the queue at the last refresh
const MAX_ROWS = 500; // rows drawn at most: filters narrow a longer queue
const MAX_ENDED = 100;
const expanded = new Set(); // job ids whose priority details are open
const rows = new Map(); // job id → <tr>
let refreshNow = () => {};

// -- filters, kept in the address so that a filtered queue can be bookmarked -----------------
for (const [key, value] of new URLSearchParams(location.search)) {
  if (form.elements[key]) form.elements[key].value = value;
}
function filters() {
  return Object.fromEntries(['state', 'user', 'project', 'q'].map((k) => [k, form.elements[k].value.trim()]));
}
function matches(job, f) {
  if (f.state && job.state !== f.state) return false;
  if (f.user && job.user !== f.user) return false;
  if (f.project && job.project !== f.project) return false;
  if (f.q && !String(job.id).startsWith(f.q) && !job.name.toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}
function onFilter() {
  const params = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v));
  history.replaceState(null, '', params.toString() ? `?${params}` : location.pathname);
  render();
}
form.addEventListener('input', onFilter);
form.addEventListener('reset', () => setTimeout(onFilter));
form.addEventListener('submit', (event) => event.preventDefault());

// -- actions -----------------------------------------------------------------------------
function confirmCancel(job) {
  document.getElementById('confirm-text').textContent =
    `Job ${job.id} (${job.name}) is ${job.state.toLowerCase()}. Cancelling cannot be undone.`;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.showModal();
  });
}

async function act(job, action) {
  if (action === 'cancel' && !(await confirmCancel(job))) return;
  try {
    await api(`/v1/jobs/${job.id}/${action}`, { method: 'POST' });
    const done = { hold: 'held', release: 'released', cancel: 'cancelled' }[action];
    announce(`Job ${job.id} ${done}.`);
    showProblem('');
    refreshNow();
  } catch (error) {
    showProblem(`Job ${job.id} could not be ${action === 'hold' ? 'held' : `${action}ed`}: ${error.message}`);
  }
}

function actionsFor(job) {
  if (!who || !mayChange(who, job)) return [];
  const out = [];
  if (job.state === 'PENDING') out.push(job.held ? 'release' : 'hold');
  out.push('cancel');
  return out;
}

// -- rows --------------------------------------------------------------------------------
const COLUMNS = 13;

function newRow(job) {
  const tr = el('tr', { 'data-job': job.id });
  for (let i = 0; i < COLUMNS; i += 1) tr.append(el('td'));
  const cells = tr.children;
  cells[0].append(el('a', { href: `/jobs/${job.id}` }, String(job.id)));
  for (const i of [6, 7, 11]) cells[i].classList.add('num');
  cells[4].classList.add('state');
  cells[5].classList.add('reason');
  return tr;
}

function setText(cell, text) {
  if (cell.textContent !== text) cell.textContent = text;
}

function fill(tr, job) {
  const c = tr.children;
  setText(c[1], job.name);
  setText(c[2], job.user);
  if (c[3].dataset.project !== job.project) {
    c[3].dataset.project = job.project;
    c[3].replaceChildren(el('a', { href: `/projects/${encodeURIComponent(job.project)}` }, job.project));
  }
  if (c[4].textContent !== job.state) c[4].replaceChildren(stateBadge(job.state));
  setText(c[5], job.state === 'PENDING' ? (job.reason || 'None') : '—');
  setText(c[6], String(job.gpus));
  setText(c[7], job.nodelist.length ? hostlist(job.nodelist) : String(job.nodes));
  if (c[8].dataset.ts !== String(job.submit_ts)) {
    c[8].dataset.ts = String(job.submit_ts);
    c[8].replaceChildren(timeEl(job.submit_ts));
  }
  const start = job.start_ts ?? job.eta_ts;
  const startKey = `${job.state}:${start}`;
  if (c[9].dataset.key !== startKey) {
    c[9].dataset.key = startKey;
    if (job.start_ts !== null) c[9].replaceChildren(timeEl(job.start_ts));
    else if (job.eta_ts !== null) c[9].replaceChildren('ETA ', timeEl(job.eta_ts));
    else c[9].replaceChildren('—');
  }
  if (job.start_ts !== null) {
    c[10].dataset.since = String(job.start_ts);
    setText(c[10], duration(serverNow() - job.start_ts));
  } else {
    delete c[10].dataset.since;
    setText(c[10], '—');
  }
  const factors = priorities.get(job.id);
  const priorityKey = job.state === 'PENDING' ? `${factors ? factors.priority : ''}` : '-';
  if (c[11].dataset.key !== priorityKey) {
    c[11].dataset.key = priorityKey;
    if (job.state !== 'PENDING') c[11].replaceChildren('—');
    else {
      const open = expanded.has(job.id);
      c[11].replaceChildren(factors ? factor(factors.priority) : '…', ' ',
        el('button', {
          type: 'button', class: 'why', 'aria-expanded': String(open), 'aria-controls': `why-${job.id}`,
          'aria-label': `Why is job ${job.id} waiting?`, onclick: () => toggleWhy(job.id),
        }, 'Why?'));
    }
  }
  const wanted = actionsFor(job);
  const actionsKey = wanted.join(',');
  if (c[12].dataset.key !== actionsKey) {
    c[12].dataset.key = actionsKey;
    const box = el('div', { class: 'actions' }, wanted.map((action) => el('button', {
      type: 'button', class: action === 'cancel' ? 'danger' : null, 'data-action': action,
      'aria-label': `${action[0].toUpperCase()}${action.slice(1)} job ${job.id}`,
      onclick: () => act(seen.get(job.id) || job, action),
    }, action[0].toUpperCase() + action.slice(1))));
    const focused = c[12].contains(document.activeElement) ? document.activeElement.dataset.action : null;
    c[12].replaceChildren(box);
    if (focused) box.querySelector(`[data-action="${focused}"]`)?.focus();
  }
}

async function toggleWhy(id) {
  if (expanded.has(id)) expanded.delete(id);
  else expanded.add(id);
  const tr = rows.get(id);
  if (tr) delete tr.children[11].dataset.key;
  render();
  const button = rows.get(id)?.querySelector('button.why');
  button?.focus();
}

async function whyRow(job) {
  const row = el('tr', { class: 'details', id: `why-${job.id}` },
    el('td', { colspan: COLUMNS }, 'Loading…'));
  try {
    const detail = await api(`/v1/jobs/${job.id}`);
    const p = detail.priority;
    const factors = p
      ? el('dl', { class: 'kv' }, ['priority', 'age', 'fairshare', 'qos', 'size', 'grant'].map((k) =>
        el('div', {}, el('dt', {}, k), el('dd', {}, factor(p[k])))))
      : el('p', {}, 'No priority factors yet (the next scheduling cycle sets them).');
    row.firstChild.replaceChildren(
      el('p', {}, `Reason: ${detail.reason || 'None'}`, detail.reason_detail ? ` — ${detail.reason_detail}` : '',
        detail.eta_ts ? ` · planned start ${clock(detail.eta_ts)}` : ''), factors);
  } catch (error) {
    row.firstChild.textContent = `Could not load: ${error.message}`;
  }
  return row;
}

const whyRows = new Map();

async function render() {
  const f = filters();
  const matching = jobs.filter((job) => matches(job, f));
  const shown = matching.slice(0, MAX_ROWS);
  const order = [];
  for (const job of shown) {
    let tr = rows.get(job.id);
    if (!tr) { tr = newRow(job); rows.set(job.id, tr); }
    fill(tr, job);
    order.push(tr);
    if (expanded.has(job.id) && job.state === 'PENDING') {
      if (!whyRows.has(job.id)) whyRows.set(job.id, await whyRow(job));
      order.push(whyRows.get(job.id));
    } else {
      whyRows.delete(job.id);
    }
  }
  const current = new Set(jobs.map((j) => j.id));
  for (const id of [...rows.keys()]) if (!current.has(id)) rows.delete(id);
  if (!order.length) {
    order.push(el('tr', { class: 'empty' }, el('td', { colspan: COLUMNS },
      jobs.length ? 'No job matches the filters.' : 'The queue is empty.')));
  }
  const drawn = [...body.children];
  if (drawn.length !== order.length || drawn.some((tr, i) => tr !== order[i])) {
    body.replaceChildren(...order);
  }
  const pending = jobs.filter((j) => j.state === 'PENDING').length;
  const more = matching.length > shown.length ? ` (the first ${MAX_ROWS} of ${matching.length} matching: filter to narrow)` : '';
  count.textContent = `${shown.length} of ${jobs.length} jobs shown${more} · ${pending} pending, ${jobs.length - pending} running`;
}

async function recordEnded(id) {
  let job;
  try {
    job = await api(`/v1/jobs/${id}`);
  } catch {
    return; // gone: nothing to show
  }
  endedBody.querySelector('tr.empty')?.remove();
  const runTime = job.start_ts !== null && job.end_ts !== null ? duration(job.end_ts - job.start_ts) : '—';
  endedBody.prepend(el('tr', { 'data-job': job.id },
    el('td', {}, el('a', { href: `/jobs/${job.id}` }, String(job.id))), el('td', {}, job.name),
    el('td', {}, job.user), el('td', {}, job.project), el('td', { class: 'state' }, stateBadge(job.state)),
    el('td', { class: 'num' }, job.exit_code === null ? '—' : String(job.exit_code)),
    el('td', {}, timeEl(job.end_ts)), el('td', { class: 'num' }, runTime)));
  while (endedBody.children.length > MAX_ENDED) endedBody.lastChild.remove();
  announce(`Job ${job.id} ended: ${job.state}.`);
}

async function refresh() {
  if (who === null) who = await whoami();
  const queue = await api('/v1/queue');
  jobs = queue.jobs;
  const now = new Set(jobs.map((j) => j.id));
  const gone = [...seen.keys()].filter((id) => !now.has(id));
  for (const id of gone) seen.delete(id);
  for (const job of jobs) seen.set(job.id, job);
  if (jobs.some((j) => j.state === 'PENDING')) {
    const pending = await api('/v1/jobs?state=PENDING&limit=500');
    priorities = new Map(pending.jobs.filter((j) => j.priority).map((j) => [j.id, j.priority]));
  }
  whyRows.clear(); // reasons change per cycle: reload open details
  await render();
  for (const id of gone) await recordEnded(id);
}

refreshNow = live(refresh);
