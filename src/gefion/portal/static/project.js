// A project: its grants with a burn-down and the scheduler's forecast, its fair-share
// standing, and the GPU-hours and energy used by each member — from the API's grants,
// project, project usage (/v1/projects/{name}/usage: the fair-share rows of /v1/share and
// the grant standing), usage report by user, and the project's job records (the burn-down).
import {
  api, el, live, number, serverNow, clock, timeEl, factor, whoami, duration, ApiError,
} from './lib.js';

const project = document.getElementById('main').dataset.project;
const enc = encodeURIComponent(project);
const MAX_JOBS = 5000; // job records read at most (5 pages of the API)
const SVG = 'http://www.w3.org/2000/svg';

async function projectJobs() {
  const out = [];
  let after = null;
  while (out.length < MAX_JOBS) {
    const page = await api(`/v1/jobs?project=${enc}&limit=1000${after === null ? '' : `&after=${after}`}`);
    out.push(...page.jobs);
    if (page.next_after === null) return { jobs: out, complete: true };
    after = page.next_after;
  }
  return { jobs: out, complete: false };
}

/** GPU-hours `jobs` used in [from, to). */
function used(jobs, from, to) {
  let sum = 0;
  for (const job of jobs) {
    if (job.start_ts === null) continue;
    const start = Math.max(job.start_ts, from);
    const end = Math.min(job.end_ts ?? to, to);
    if (end > start) sum += ((end - start) * (job.gpus || 0)) / 3600;
  }
  return sum;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

/** The grants in force now and where they stand. The numbers (granted, left, burn rate,
 *  when they run out, when they lapse) are the scheduler's (`server`: the `grants` of
 *  /v1/projects/{name}/usage); the window's start is where the burn-down is drawn from. */
function standing(grants, server, now) {
  const active = grants.filter((g) => g.valid_from_ts <= now && (g.valid_to_ts === null || now < g.valid_to_ts));
  if (!active.length || !server) return null;
  const start = Math.min(...active.map((g) => g.valid_from_ts));
  const total = server.granted_gpu_hours;
  const left = Math.max(0, server.left_gpu_hours);
  return {
    active, start, end: server.expires_ts, total, left, spent: total - left,
    rate: server.burn_gpu_hours_per_hour / 3600, // GPU-hours per second
    perHour: server.burn_gpu_hours_per_hour, window: server.burn_window_s,
    emptyAt: server.runs_out_ts, exhausted: server.exhausted,
  };
}

function grantsSection(grants, s, now) {
  const box = document.getElementById('grants');
  if (!grants.length) {
    box.replaceChildren(el('p', { class: 'empty-state' }, 'No grants defined for this project.'));
    return;
  }
  const status = (g) => (g.valid_from_ts > now ? 'future' : (g.valid_to_ts !== null && now >= g.valid_to_ts ? 'ended' : 'active'));
  const table = el('table', { class: 'jobs' },
    el('caption', { class: 'visually-hidden' }, 'Grants of the project'),
    el('thead', {}, el('tr', {}, ['Grant', 'Funder', 'GPU-hours', 'From', 'To', 'Status'].map((h) =>
      el('th', { scope: 'col', class: h === 'GPU-hours' ? 'num' : null }, h)))),
    el('tbody', {}, grants.map((g) => el('tr', {}, el('td', {}, g.id), el('td', {}, g.funder || '—'),
      el('td', { class: 'num' }, number(g.gpu_hours, 1)), el('td', {}, timeEl(g.valid_from_ts)),
      el('td', {}, g.valid_to_ts === null ? 'open-ended' : timeEl(g.valid_to_ts)), el('td', {}, status(g))))));
  const parts = [el('div', { class: 'table-wrap' }, table)];
  if (s) {
    parts.push(el('p', { id: 'forecast' }, forecastText(s)));
  } else {
    parts.push(el('p', { class: 'empty-state' }, 'No grant is in force now.'));
  }
  box.replaceChildren(...parts);
}

/** A burn window in words: 7 days, 5.0 hours, 12:34 (minutes). */
const span = (seconds) => (seconds >= 86400 ? `${number(seconds / 86400, seconds % 86400 ? 1 : 0)} days`
  : seconds >= 3600 ? `${number(seconds / 3600, 1)} hours` : duration(seconds));

function forecastText(s) {
  const head = `${number(s.spent, 1)} of ${number(s.total, 1)} GPU-hours used; ${number(s.left, 1)} left. `;
  if (s.left <= 0 || s.exhausted) return `${head}The grants in force are used up.`;
  if (s.emptyAt === null) return `${head}Nothing is being used: at this rate the grants last${s.end ? ` to their end, ${clock(s.end)}` : ''}.`;
  const pace = `At the scheduler's burn rate (${number(s.perHour, 2)} GPU-hours an hour over the last ${span(s.window)}), `;
  if (s.end !== null && s.emptyAt >= s.end) {
    return `${head}${pace}${number(Math.max(0, s.left - s.rate * (s.end - serverNow())), 1)} GPU-hours are left when the grants end, ${clock(s.end)}.`;
  }
  return `${head}${pace}they run out around ${clock(s.emptyAt)}.`;
}

function chart(jobs, s, now) {
  const figure = document.getElementById('burn');
  const started = jobs.filter((j) => j.start_ts !== null);
  if (!s && !started.length) {
    figure.replaceChildren(el('p', { class: 'empty-state' }, 'No grant in force and no GPU-hours used yet.'));
    return;
  }
  const t0 = s ? s.start : Math.min(...started.map((j) => j.start_ts));
  let t1 = now;
  if (s) {
    const horizon = s.end ?? now + Math.max(now - t0, 86400);
    t1 = Math.max(now, Math.min(horizon, s.emptyAt ?? horizon));
  }
  const span = Math.max(t1 - t0, 1);
  const steps = 60;
  const past = Array.from({ length: steps + 1 }, (_, i) => {
    const t = t0 + ((now - t0) * i) / steps;
    return [t, used(jobs, t0, t)];
  });
  // With a grant: what is left (burn-down); without: what was used (burn-up).
  const value = s ? (v) => Math.max(0, s.total - v) : (v) => v;
  const top = s ? s.total || 1 : Math.max(past[past.length - 1][1], 1e-9);
  const W = 800, H = 260, L = 70, B = 30, T = 10, R = 10;
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const line = (points) => points.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(value(v)).toFixed(1)}`).join(' ');
  const parts = [
    svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
    svg('text', { x: L - 6, y: T + 10, 'text-anchor': 'end' }, number(top, 1)),
    svg('text', { x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'),
    svg('text', { x: L, y: H - 8 }, clock(t0)),
    svg('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, t1 > now + 1 ? clock(t1) : 'now'),
    svg('path', { class: 'series', d: line(past) }),
  ];
  let label;
  if (s) {
    if (s.emptyAt !== null && t1 > now) {
      const tEnd = Math.min(t1, s.emptyAt);
      const vEnd = s.spent + s.rate * (tEnd - now);
      parts.push(svg('path', { class: 'series forecast', d: line([[now, s.spent], [tEnd, vEnd]]) }));
    }
    parts.push(svg('line', { class: 'now', x1: x(now), y1: T, x2: x(now), y2: H - B }));
    label = `GPU-hours left of the grants in force, from ${clock(t0)}: ${number(s.left, 1)} of ${number(s.total, 1)} now; dashed: the scheduler's forecast at its burn rate`;
  } else {
    label = `GPU-hours used by ${project} from ${clock(t0)} to now: ${number(past[past.length - 1][1], 2)} (no grant in force)`;
  }
  figure.replaceChildren(svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label }, ...parts),
    el('figcaption', {}, `${label}.`));
}

const pct = (v) => `${(100 * v).toFixed(1)}%`;

async function fairshare(info, usage) {
  const rows = [['Shares', String(info.shares)]];
  const who = await whoami();
  if (who.staff) {
    const all = await api('/v1/projects');
    const total = all.projects.reduce((sum, p) => sum + p.shares, 0);
    if (total > 0) rows.push(['Entitlement', `${((100 * info.shares) / total).toFixed(1)}% of the machine (${info.shares} of ${total} shares)`]);
  }
  const share = usage ? usage.share : [];
  const own = share.find((r) => r.user === null);
  if (own) {
    rows.push(['Fair-share factor', factor(own.fairshare)]);
    rows.push(['Shares vs usage', `${pct(own.norm_shares)} of the shares, ${pct(own.effective_usage)} of the (decayed) usage`]);
    rows.push(['As of', timeEl(usage.as_of_ts)]);
  } else {
    rows.push(['Fair-share factor', '— (not computed yet)']);
  }
  if (info.max_gpus) rows.push(['GPU limit', `${info.max_gpus} GPUs at once`]);
  document.getElementById('fairshare').replaceChildren(...rows.map(([k, v]) =>
    el('div', {}, el('dt', {}, k), el('dd', {}, v))));
  const users = share.filter((r) => r.user !== null).sort((a, b) => a.user.localeCompare(b.user));
  document.querySelector('#share-users tbody').replaceChildren(...(users.length ? users.map((r) =>
    el('tr', { 'data-user': r.user }, el('td', {}, r.user),
      el('td', { class: 'num' }, number(r.raw_usage_gpu_s / 3600, 2)),
      el('td', { class: 'num' }, pct(r.norm_shares)),
      el('td', { class: 'num' }, factor(r.fairshare)))) : [el('tr', {}, el('td', { colspan: 4 }, 'No member standing yet.'))]));
}

function members(jobs, report, people) {
  const blank = (role) => ({ role, hours: 0, kwh: 0, measured: false, jobs: 0, running: 0, pending: 0 });
  const by = new Map(people.map((m) => [m.user, blank(m.role)]));
  const get = (user) => {
    if (!by.has(user)) by.set(user, blank('not a member'));
    return by.get(user);
  };
  for (const row of report ? report.rows : []) {
    const m = get(row.user);
    m.hours = row.gpu_hours;
    m.kwh = row.energy_kwh;
    m.measured = row.unmeasured_gpu_hours < row.raw_gpu_hours;
    m.jobs = row.jobs;
  }
  for (const job of jobs) {
    const m = get(job.user);
    if (job.state === 'RUNNING') m.running += 1;
    if (job.state === 'PENDING') m.pending += 1;
  }
  const body = document.querySelector('#members tbody');
  const names = [...by.keys()].sort((a, b) => by.get(b).hours - by.get(a).hours || a.localeCompare(b));
  body.replaceChildren(...(names.length ? names.map((name) => {
    const m = by.get(name);
    return el('tr', { 'data-user': name }, el('td', {}, name), el('td', {}, m.role),
      el('td', { class: 'num' }, number(m.hours, 2)),
      el('td', { class: 'num' }, m.measured ? number(m.kwh, 2) : '—'),
      el('td', { class: 'num' }, String(m.jobs)), el('td', { class: 'num' }, String(m.running)),
      el('td', { class: 'num' }, String(m.pending)));
  }) : [el('tr', {}, el('td', { colspan: 7 }, 'No members and no jobs.'))]));
  document.getElementById('members-note').textContent = report
    ? `GPU-hours (charged) and energy ${report.from_ts > 0 ? `since ${clock(report.from_ts)}` : 'ever'}, from the usage report by user; running and pending from the queue.`
    : 'No usage report for this project.';
}

/** `path`'s JSON, or null where the API answers 404 (nothing to show). */
async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

async function refresh() {
  const [info, grants, { jobs }, usage, report] = await Promise.all([
    api(`/v1/projects/${enc}`), api(`/v1/grants?project=${enc}`), projectJobs(),
    optional(`/v1/projects/${enc}/usage`), optional(`/v1/reports/usage?by=user&project=${enc}`)]);
  const now = serverNow();
  const sorted = [...grants.grants].sort((a, b) => a.valid_from_ts - b.valid_from_ts);
  const s = standing(sorted, usage ? usage.grants : null, now);
  grantsSection(sorted, s, now);
  chart(jobs, s, now);
  members(jobs, report, info.members);
  await fairshare(info, usage);
}

live(refresh);
