// The job page: state, spec, events timeline, live output, GPU-hours and energy.
import {
  api, el, live, whoami, mayChange, announce, showProblem, timeEl, duration, stateBadge,
  hostlist, serverNow, number, factor, onLeave,
} from './lib.js';

const id = Number(document.getElementById('main').dataset.jobId);
const logBox = document.getElementById('job-log');
const logStatus = document.getElementById('log-status');
const MAX_LOG_CHARS = 200000;

let who = null;
let job = null;
let refreshNow = () => {};

function kv(pairs) {
  return pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v)));
}

function summary() {
  const spec = job.spec || {};
  const limit = job.time_limit_s ? duration(job.time_limit_s) : '—';
  document.getElementById('job-summary').replaceChildren(...kv([
    ['User', job.user], ['Project', el('a', { href: `/projects/${encodeURIComponent(job.project)}` }, job.project)],
    ['QOS', job.qos], ['GPUs', String(job.gpus ?? '—')], ['Nodes', String(job.nodes ?? '—')],
    ['Node list', job.nodelist.length
      ? el('a', { href: `/machine?job=${job.id}`, class: 'mono' }, hostlist(job.nodelist)) : null],
    ['Time limit', limit], ['Submitted', timeEl(job.submit_ts)],
    ['Started', job.start_ts !== null ? timeEl(job.start_ts) : null],
    ['Ended', job.end_ts !== null ? timeEl(job.end_ts) : null],
    ['Run time', job.start_ts !== null
      ? el('span', job.end_ts === null ? { 'data-since': job.start_ts } : {}, duration(job.elapsed_s || 0)) : null],
    ['Exit code', job.exit_code !== null ? String(job.exit_code) + (job.signal ? ` (signal ${job.signal})` : '') : null],
    ['Restarts', job.restarts ? String(job.restarts) : null],
    ['Working directory', spec.workdir ? el('code', {}, spec.workdir) : null],
    ['Array', job.array_job_id !== null ? `${job.array_job_id}_${job.array_task_id}` : null],
  ]));
  const script = document.getElementById('job-script');
  const text = spec.script || '(no script text: a --wrap command)';
  if (script.textContent !== text) script.textContent = text;
}

function head() {
  document.getElementById('job-name').textContent = job.name;
  const state = document.getElementById('job-state');
  state.className = `badge ${job.state}`;
  state.textContent = job.state;
  const reason = document.getElementById('job-reason');
  if (job.state === 'PENDING') {
    const parts = [`Reason: ${job.held ? 'HELD' : (job.reason || 'None')}`];
    if (job.reason_detail) parts.push(job.reason_detail);
    reason.replaceChildren(parts.join(' — '), job.eta_ts ? ' · planned start ' : '', job.eta_ts ? timeEl(job.eta_ts) : '');
  } else {
    reason.replaceChildren();
  }
  const actions = [];
  if (who && mayChange(who, job) && !['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY'].includes(job.state)) {
    if (job.state === 'PENDING') actions.push(job.held ? 'release' : 'hold');
    actions.push('cancel');
  }
  const box = document.getElementById('job-actions');
  const key = actions.join(',');
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    box.replaceChildren(...actions.map((action) => el('button', {
      type: 'button', class: action === 'cancel' ? 'danger' : null, 'data-action': action,
      onclick: () => act(action),
    }, action[0].toUpperCase() + action.slice(1))));
  }
}

async function act(action) {
  try {
    await api(`/v1/jobs/${id}/${action}`, { method: 'POST' });
    announce(`Job ${id}: ${action} done.`);
    showProblem('');
    refreshNow();
  } catch (error) {
    showProblem(`Could not ${action} job ${id}: ${error.message}`);
  }
}

function usage() {
  const gpuh = document.getElementById('job-gpuh');
  if (typeof job.gpu_s === 'number' && (job.gpu_s > 0 || job.start_ts === null)) {
    gpuh.textContent = job.gpu_s > 0 ? number(job.gpu_s / 3600, 3) : '—';  // every run
  } else if (job.start_ts === null) {
    gpuh.textContent = '—';
  } else {
    const end = job.end_ts ?? serverNow();
    gpuh.textContent = number(((job.gpus || 0) * Math.max(0, end - job.start_ts)) / 3600, 3);
  }
  // Energy: the telemetry sampler's integral over the job's own GPUs (docs/telemetry.md).
  const energy = document.getElementById('job-energy');
  if (typeof job.energy_j === 'number') {
    energy.textContent = `${number(job.energy_j / 3.6e6, 3)} kWh${job.state === 'RUNNING' ? ' so far' : ''}`
      + (job.idle_gpus ? ' (GPUs idle)' : '');
  } else {
    energy.textContent = job.start_ts === null ? '—' : '— (not measured)';
  }
  const p = job.priority;
  const box = document.getElementById('job-priority');
  if (job.state === 'PENDING' && p) {
    box.replaceChildren(...kv(['priority', 'age', 'fairshare', 'qos', 'size', 'grant']
      .map((k) => [k, factor(p[k])])));
  } else {
    box.replaceChildren(...kv([['—', job.state === 'PENDING' ? 'not computed yet' : 'only while pending']]));
  }
}

function describe(event) {
  const p = event.payload || {};
  const bits = [];
  if (p.allocation) bits.push(`on ${hostlist(Object.keys(p.allocation))}`);
  if (p.exit_code !== undefined && p.exit_code !== null) bits.push(`exit code ${p.exit_code}`);
  if (p.signal) bits.push(`signal ${p.signal}`);
  if (p.state) bits.push(p.state);
  if (p.by) bits.push(`by ${p.by}`);
  if (p.reason) bits.push(p.reason);
  if (event.kind === 'job.submitted' && p.spec) bits.push(`${p.spec.gpus ?? '?'} GPUs`);
  return bits.join(', ');
}

function timeline(events) {
  const list = document.getElementById('job-events');
  if (list.dataset.count === String(events.length)) return;
  list.dataset.count = String(events.length);
  list.replaceChildren(...events.map((event) => el('li', { 'data-kind': event.kind },
    timeEl(event.ts), el('span', { class: 'kind' }, event.kind.replace(/^job\./, '')),
    describe(event) ? ` — ${describe(event)}` : '')));
}

// -- output: the last lines, then followed while the job has not ended --------------------
let follow = null; // { key, controller }

function stream() {
  return document.querySelector('input[name="stream"]:checked').value;
}

function append(text) {
  const atEnd = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
  let all = logBox.textContent + text;
  if (all.length > MAX_LOG_CHARS) all = all.slice(all.length - MAX_LOG_CHARS);
  logBox.textContent = all;
  if (atEnd) logBox.scrollTop = logBox.scrollHeight;
}

async function output() {
  const ended = job.end_ts !== null;
  const key = `${stream()}:${ended}:${job.restarts}`;
  if (follow && follow.key === key) return;
  if (follow) follow.controller.abort();
  const controller = new AbortController();
  follow = { key, controller };
  logBox.textContent = '';
  const what = stream();
  logStatus.textContent = ended ? `Last lines of ${what}.` : `Following ${what} live…`;
  try {
    const answer = await fetch(`/v1/jobs/${id}/logs?stream=${what}&tail=200${ended ? '' : '&follow=true'}`,
      { signal: controller.signal });
    if (!answer.ok) {
      const problem = await answer.json().catch(() => ({}));
      logStatus.textContent = `Output not shown: ${problem.detail || answer.status}`;
      return;
    }
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      append(decoder.decode(value, { stream: true }));
    }
    if (!controller.signal.aborted) {
      logStatus.textContent = logBox.textContent ? `End of ${what}.` : `No ${what} output.`;
    }
  } catch (error) {
    if (error.name !== 'AbortError') logStatus.textContent = `Output interrupted: ${error.message}`;
  }
}

onLeave(() => { if (follow) follow.controller.abort(); });
for (const radio of document.querySelectorAll('input[name="stream"]')) {
  radio.addEventListener('change', () => { if (job) output(); });
}
document.addEventListener('gefion:tick', () => { if (job && job.end_ts === null && job.start_ts !== null) usage(); });

async function refresh() {
  if (who === null) who = await whoami();
  const [detail, events] = await Promise.all([api(`/v1/jobs/${id}`), api(`/v1/jobs/${id}/events`)]);
  job = detail;
  head();
  summary();
  usage();
  timeline(events.events);
  output();
}

refreshNow = live(refresh);
