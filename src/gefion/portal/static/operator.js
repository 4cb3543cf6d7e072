// The operator page: drain and resume nodes, idle-GPU flags (running jobs whose GPUs the
// telemetry sees idle, and free GPUs while jobs wait), the reservations calendar
// (one-off and recurring reservations, drawn day by day over this week).
import {
  api, el, live, announce, showProblem, number, clock, timeEl, duration,
} from './lib.js';

const drainForm = document.getElementById('drain');
const filterForm = document.getElementById('node-filter');
const body = document.querySelector('#nodes tbody');
let nodes = [];
let refreshNow = () => {};

const SHOW = {
  attention: (n) => n.state === 'drained' || n.state === 'down',
  busy: (n) => n.state === 'mixed' || n.state === 'allocated',
  all: () => true,
};

async function change(name, action, reason) {
  try {
    const body = action === 'drain' ? { reason } : undefined;
    await api(`/v1/nodes/${encodeURIComponent(name)}/${action}`, { method: 'POST', body });
    announce(`Node ${name} ${action === 'drain' ? 'drained' : 'resumed'}.`);
    showProblem('');
    refreshNow();
    return true;
  } catch (error) {
    showProblem(`Could not ${action} ${name}: ${error.message}`);
    return false;
  }
}

drainForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = drainForm.elements.node.value.trim();
  const reason = drainForm.elements.reason.value.trim();
  if (await change(name, 'drain', reason)) drainForm.reset();
});
filterForm.addEventListener('input', () => render());
filterForm.addEventListener('submit', (event) => event.preventDefault());

function render() {
  const show = SHOW[filterForm.elements.show.value];
  const shown = nodes.filter(show);
  const focused = body.contains(document.activeElement) ? document.activeElement.dataset.node : null;
  body.replaceChildren(...(shown.length ? shown.map((node) => {
    const out = node.state === 'drained' || node.state === 'down';
    const action = out
      ? el('button', { type: 'button', 'data-node': node.name, onclick: () => change(node.name, 'resume') }, `Resume ${node.name}`)
      : el('button', {
        type: 'button', 'data-node': node.name,
        onclick: () => { drainForm.elements.node.value = node.name; drainForm.elements.reason.focus(); },
      }, `Drain ${node.name}…`);
    return el('tr', { 'data-node': node.name }, el('td', {}, node.name), el('td', {}, node.su),
      el('td', { class: 'state' }, node.state), el('td', { class: 'num' }, `${node.gpus_allocated} of ${node.gpus}`),
      el('td', {}, node.reason || '—'), el('td', {}, action));
  }) : [el('tr', {}, el('td', { colspan: 6 }, 'No node to show.'))]));
  if (focused) body.querySelector(`button[data-node="${CSS.escape(focused)}"]`)?.focus();
  document.getElementById('nodes-count').textContent = `${shown.length} of ${nodes.length} nodes shown`;
}

function idle(cluster) {
  const up = nodes.filter((n) => n.state !== 'drained' && n.state !== 'down');
  const free = up.reduce((sum, n) => sum + n.gpus - n.gpus_allocated, 0);
  const idleNodes = up.filter((n) => n.gpus_allocated === 0).length;
  const waiting = cluster.jobs_by_state.PENDING || 0;
  const reasons = Object.entries(cluster.queue_by_reason).map(([r, n]) => `${r} ×${n}`).join(', ');
  const items = [el('li', {}, `${number(free)} GPUs free on nodes in service (${idleNodes} nodes wholly idle).`)];
  if (free > 0 && waiting > 0) {
    items.push(el('li', { class: 'problem' }, `Flag: ${number(free)} GPUs idle while ${waiting} jobs wait` +
      (reasons ? ` (${reasons}).` : '.')));
  } else {
    items.push(el('li', {}, waiting ? `${waiting} jobs wait; no GPU is free.` : 'No job waits.'));
  }
  document.getElementById('idle').replaceChildren(...items);
}

/** The running jobs whose GPUs the telemetry sampler sees idle (`idle_gpus`). */
function idleJobs(jobs) {
  const box = document.getElementById('idle-jobs');
  const flagged = jobs.filter((j) => j.idle_gpus);
  if (!flagged.length) {
    box.replaceChildren(el('p', { class: 'empty-state' }, 'No running job has idle GPUs: none flagged.'));
    return;
  }
  box.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'jobs', id: 'idle-table' },
    el('caption', { class: 'visually-hidden' }, 'Running jobs with idle GPUs'),
    el('thead', {}, el('tr', {}, ['Job', 'User', 'Project', 'Nodes', 'Idle since'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, flagged.map((j) => el('tr', { 'data-job': j.id },
      el('td', {}, el('a', { href: `/jobs/${j.id}` }, `${j.id} ${j.name || ''}`.trim())),
      el('td', {}, j.user), el('td', {}, j.project), el('td', { class: 'mono' }, j.nodelist.join(', ') || '—'),
      el('td', {}, j.idle_since_ts === null ? '—' : timeEl(j.idle_since_ts))))))));
}

const DAY_S = 86400;

/** Each occurrence of reservation `r` that overlaps [from, to): [start, end] pairs. */
function occurrences(r, from, to) {
  const length = r.end_ts - r.start_ts;
  if (!r.period_s) return r.start_ts < to && r.end_ts > from ? [[r.start_ts, r.end_ts]] : [];
  const out = [];
  let k = Math.max(0, Math.ceil((from - r.end_ts) / r.period_s));
  for (; ; k += 1) {
    const start = r.start_ts + k * r.period_s;
    if (start >= to || (r.until_ts !== null && start >= r.until_ts)) break;  // as core/reservations.py
    if (start + length > from) out.push([start, start + length]);
  }
  return out;
}

const hhmm = (ts) => clock(ts).slice(-8, -3);

function every(seconds) {
  if (seconds % DAY_S === 0) return seconds === DAY_S ? 'daily' : `every ${seconds / DAY_S} days`;
  if (seconds % 3600 === 0) return `every ${seconds / 3600} h`;
  return `every ${duration(seconds)}`;
}

function calendar(reservations) {
  const today = new Date();
  const monday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - ((today.getDay() + 6) % 7));
  const days = Array.from({ length: 7 }, (_, i) => new Date(monday.getFullYear(), monday.getMonth(), monday.getDate() + i));
  const isToday = (d) => d.toDateString() === today.toDateString();
  const name = (d) => d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
  document.querySelector('#calendar thead tr').replaceChildren(...days.map((d) =>
    el('th', { scope: 'col', class: isToday(d) ? 'today' : null }, name(d))));
  document.querySelector('#calendar tbody tr').replaceChildren(...days.map((d) => {
    const from = d.getTime() / 1000;
    const to = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime() / 1000;
    const blocks = reservations.flatMap((r) => occurrences(r, from, to).map(([s, e]) => el('li', {
      class: `resv${r.maintenance ? ' maintenance' : ''}`,
    }, el('strong', {}, r.name), ` ${s < from ? '…' : hhmm(s)}–${e > to ? '…' : hhmm(e)}`,
    el('br'), `${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'}${r.maintenance ? ', maintenance' : ''}${r.period_s ? ', repeats' : ''}`)));
    return el('td', { class: isToday(d) ? 'today' : null },
      blocks.length ? el('ul', { class: 'plain-list' }, blocks) : el('span', { class: 'visually-hidden' }, 'no reservation'));
  }));
  const box = document.getElementById('reservations');
  if (!reservations.length) {
    box.replaceChildren(el('p', { class: 'empty-state' }, 'No reservations defined.'));
    return;
  }
  box.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { class: 'jobs' },
    el('caption', { class: 'visually-hidden' }, 'Every reservation'),
    el('thead', {}, el('tr', {}, ['Reservation', 'Nodes', 'Window', 'Repeats', 'For'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, reservations.map((r) => el('tr', { 'data-reservation': r.name },
      el('td', {}, r.name, r.maintenance ? ' (maintenance)' : ''), el('td', { class: 'mono' }, r.nodelist),
      el('td', {}, timeEl(r.start_ts), ' – ', timeEl(r.end_ts)),
      el('td', {}, r.period_s ? `${every(r.period_s)}${r.until_ts !== null ? ` until ${clock(r.until_ts)}` : ''}` : 'once'),
      el('td', {}, [...r.projects, ...r.users].join(', ') || (r.maintenance ? 'nobody (maintenance)' : 'jobs that name it'))))))));
}

async function refresh() {
  const [nodeList, cluster, booked, running] = await Promise.all([
    api('/v1/nodes'), api('/v1/cluster'), api('/v1/reservations'), api('/v1/jobs?state=RUNNING&limit=1000')]);
  nodes = nodeList.nodes;
  const names = document.getElementById('node-names');
  if (names.children.length !== nodes.length) {
    names.replaceChildren(...nodes.map((n) => el('option', { value: n.name })));
  }
  render();
  idle(cluster);
  idleJobs(running.jobs);
  calendar(booked.reservations);
}

refreshNow = live(refresh);
