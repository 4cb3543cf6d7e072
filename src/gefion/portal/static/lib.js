// Shared by every page: the API, building DOM safely, live updates, formatting.
//
// Text from the controller (job names, users, reasons) only ever goes into the page
// through textContent (el() below), never as markup.

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && typeof problem === 'object' ? (problem.detail || problem.title) : problem;
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// The page is being left by a form the browser sends itself (Log out): requests in flight are
// dropped and no refresh follows, so one the logout outran cannot answer 401 and send the
// browser to the login page with this page as `next` instead of where the form goes. A form
// a script handles (preventDefault) or a dialog's form (method="dialog": it only closes the
// dialog) leaves nothing.
const leaving = new AbortController();
document.addEventListener('submit', (event) => {
  if (event.defaultPrevented) return;
  const method = event.submitter?.getAttribute('formmethod') || event.target.method;
  if (method !== 'dialog') leaving.abort();
});

/** Whether the page is on its way out (see `leaving`). */
function isLeaving() {
  return leaving.signal.aborted;
}

/** Call `callback` when the page starts to be left (to stop a stream of its own). */
export function onLeave(callback) {
  leaving.signal.addEventListener('abort', callback);
}

/** JSON from the API (or text for text answers); an ApiError for a refusal. While the page
 *  is being left, the answer never comes. */
export async function api(path, { method = 'GET', body } = {}) {
  const init = {
    method, headers: { Accept: 'application/json' }, credentials: 'same-origin', signal: leaving.signal,
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let answer;
  let data;
  try {
    answer = await fetch(path, init);
    const type = answer.headers.get('content-type') || '';
    data = type.includes('json') ? await answer.json() : await answer.text();
  } catch (error) {
    if (!isLeaving()) throw error;
  }
  if (isLeaving()) return new Promise(() => {}); // dropped (or answered too late): no answer
  if (answer.status === 401) signIn(); // the session ended (logged out, token revoked)
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

/** To the login page, and back here after it. */
export function signIn() {
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/** An element: attrs may hold class, text, data-*, aria-*, any attribute, and on<event>
 *  handlers; children are nodes or strings (as text), null and false are skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- who is looking -------------------------------------------------------------------------
let principal = null;

/** The principal the portal answers to (see gefion/portal/auth.py). */
export async function whoami() {
  if (principal === null) principal = await api('/portal/whoami');
  return principal;
}

/** Whether `who` may cancel, hold or release `job`: operators and admins any job, a project
 *  lead their project's jobs, everyone their own. The API decides (gefion/api/access.py);
 *  this only hides the buttons it would refuse. */
export function mayChange(who, job) {
  return who.staff || job.user === who.name || who.projects[job.project] === 'lead';
}

// -- live updates ---------------------------------------------------------------------------
let clockOffsetS = 0; // controller clock − browser clock, from the feed

/** Seconds since the epoch on the controller's clock. */
export function serverNow() {
  return Date.now() / 1000 + clockOffsetS;
}

const POLL_MS = 2000;

/** Call `refresh` now and whenever the controller changes (the server-sent event feed);
 *  while the feed is down, every POLL_MS instead. Calls never overlap: a change during a
 *  refresh runs one more after it. Returns a function that refreshes on demand. */
export function live(refresh) {
  const indicator = document.getElementById('live');
  let running = false;
  let again = false;
  let poller = null;

  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      await refresh();
    } catch (error) {
      showProblem(`Could not update: ${error.message}`);
    } finally {
      running = false;
      if (again) { again = false; run(); }
    }
  };
  const state = (value, text) => {
    if (!indicator) return;
    indicator.dataset.state = value;
    indicator.textContent = text;
  };
  const poll = (on) => {
    if (on && poller === null) poller = setInterval(run, POLL_MS);
    if (!on && poller !== null) { clearInterval(poller); poller = null; }
  };

  const feed = new EventSource('/portal/events');
  feed.addEventListener('change', (event) => {
    const message = JSON.parse(event.data);
    clockOffsetS = message.now_ts - Date.now() / 1000;
    state('on', 'Live');
    poll(false);
    run();
  });
  feed.addEventListener('error', () => {
    state('down', 'Reconnecting…');
    poll(true); // EventSource retries by itself; poll meanwhile
  });
  window.addEventListener('pagehide', () => feed.close());
  onLeave(() => { feed.close(); poll(false); });
  state('down', 'Connecting…');
  run();
  setInterval(tick, 1000);
  return run;
}

/** Elements with data-since (a start time) show the time elapsed since, every second. */
function tick() {
  const now = serverNow();
  for (const node of document.querySelectorAll('[data-since]')) {
    node.textContent = duration(now - Number(node.dataset.since));
  }
  document.dispatchEvent(new CustomEvent('gefion:tick', { detail: now }));
}

// -- messages -------------------------------------------------------------------------------
/** Say `text` to screen readers (and nothing visible). */
export function announce(text) {
  const region = document.getElementById('announce');
  if (region) region.textContent = text;
}

/** A visible problem at the top of the page (empty text: none). */
export function showProblem(text) {
  const main = document.getElementById('main');
  let box = main.querySelector(':scope > .problem.live-problem');
  if (!box) {
    box = el('p', { class: 'problem live-problem', role: 'alert' });
    main.querySelector('h1').after(box);
  }
  box.textContent = text;
}

// -- formatting -----------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, '0');

/** Elapsed time as squeue prints it: 0:05, 1:02:03, 2-01:02:03. */
export function duration(seconds) {
  let s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400); s -= days * 86400;
  const hours = Math.floor(s / 3600); s -= hours * 3600;
  const minutes = Math.floor(s / 60); s -= minutes * 60;
  if (days) return `${days}-${pad(hours)}:${pad(minutes)}:${pad(s)}`;
  if (hours) return `${hours}:${pad(minutes)}:${pad(s)}`;
  return `${minutes}:${pad(s)}`;
}

/** A time in the browser's zone, as YYYY-MM-DD HH:MM:SS (the date left out for today). */
export function clock(ts) {
  if (ts === null || ts === undefined) return '—';
  const d = new Date(ts * 1000);
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? time : `${day} ${time}`;
}

/** A <time> element for `ts`. */
export function timeEl(ts) {
  if (ts === null || ts === undefined) return document.createTextNode('—');
  return el('time', { datetime: new Date(ts * 1000).toISOString() }, clock(ts));
}

export function number(value, digits = 0) {
  return Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A priority or one of its factors: 4 decimals for small values, 1 for large ones. */
export function factor(value) {
  if (typeof value !== 'number') return '—';
  return Math.abs(value) >= 100 ? number(value, 1) : value.toFixed(4);
}

/** A job state as a badge (its name in text, colour only as a help). */
export function stateBadge(state) {
  return el('span', { class: `badge ${state}` }, state);
}

/** Node names compressed as Slurm writes them: dgx[001-004,007]. */
export function hostlist(names) {
  const groups = new Map();
  const plain = [];
  for (const name of names) {
    const m = /^(.*?)(\d+)$/.exec(name);
    if (!m) { plain.push(name); continue; }
    if (!groups.has(m[1])) groups.set(m[1], []);
    groups.get(m[1]).push(m[2]);
  }
  const out = [...plain];
  for (const [prefix, nums] of groups) {
    nums.sort((a, b) => Number(a) - Number(b));
    const ranges = [];
    for (const n of nums) {
      const last = ranges[ranges.length - 1];
      if (last && Number(n) === Number(last[1]) + 1 && n.length === last[1].length) last[1] = n;
      else ranges.push([n, n]);
    }
    const text = ranges.map(([a, b]) => (a === b ? a : `${a}-${b}`)).join(',');
    out.push(nums.length === 1 ? `${prefix}${nums[0]}` : `${prefix}[${text}]`);
  }
  return out.join(',');
}
