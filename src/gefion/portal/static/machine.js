// The machine page: every node, grouped by scalable unit, coloured and labelled by state;
// the running jobs, each outlining its nodes on hover, focus or click; the totals.
import { api, el, live, number, hostlist } from './lib.js';

const unitsBox = document.getElementById('units');
const jobsList = document.getElementById('jobs');
const selection = document.getElementById('selection');

const SHORT = { idle: 'idle', mixed: 'mix', allocated: 'alloc', drained: 'drain', down: 'down' };

let nodes = [];
let jobs = [];
const tiles = new Map(); // node name → its button
let layoutKey = '';
let pinnedJob = Number(new URLSearchParams(location.search).get('job')) || null;
let pointedJob = null;
let chosenNode = null;

const natural = (a, b) => a.localeCompare(b, 'en', { numeric: true });

function shortName(name) {
  const m = /(\d+)$/.exec(name);
  return m ? m[1] : name;
}

function nodeLabel(node) {
  const reason = node.reason ? `, reason: ${node.reason}` : '';
  return `${node.name}: ${node.state}, ${node.gpus_allocated} of ${node.gpus} GPUs allocated${reason}`;
}

/** Build the units and their tiles once (again only if the set of nodes changes). */
function layout() {
  const key = nodes.map((n) => `${n.su}/${n.name}`).join(' ');
  if (key === layoutKey) return;
  layoutKey = key;
  tiles.clear();
  const units = new Map();
  for (const node of nodes) {
    if (!units.has(node.su)) units.set(node.su, []);
    units.get(node.su).push(node);
  }
  const sections = [...units.keys()].sort(natural).map((su) => {
    const list = el('ul', { class: 'nodes', 'aria-label': `Nodes of ${su}` });
    for (const node of units.get(su).sort((a, b) => natural(a.name, b.name))) {
      const tile = el('button', {
        type: 'button', class: 'node', 'data-node': node.name, title: node.name,
        'aria-pressed': 'false', onclick: () => chooseNode(node.name),
      }, el('span', { class: 'n' }, shortName(node.name)), el('span', { class: 's' }));
      tiles.set(node.name, tile);
      list.append(el('li', {}, tile));
    }
    return el('section', { class: 'unit', 'data-su': su, 'aria-labelledby': `unit-${su}` },
      el('h3', { id: `unit-${su}` }, su, el('span', { class: 'hint unit-count' })), list);
  });
  unitsBox.replaceChildren(...sections);
}

function paintNodes() {
  const perUnit = new Map();
  for (const node of nodes) {
    const tile = tiles.get(node.name);
    tile.className = `node state-${node.state}`;
    tile.querySelector('.s').textContent = SHORT[node.state] || node.state;
    tile.setAttribute('aria-label', nodeLabel(node));
    const count = perUnit.get(node.su) || { total: 0, busy: 0, out: 0 };
    count.total += 1;
    if (node.state === 'mixed' || node.state === 'allocated') count.busy += 1;
    if (node.state === 'drained' || node.state === 'down') count.out += 1;
    perUnit.set(node.su, count);
  }
  for (const [su, c] of perUnit) {
    const text = `${c.total} nodes · ${c.busy} in use` + (c.out ? ` · ${c.out} drained or down` : '');
    unitsBox.querySelector(`[data-su="${CSS.escape(su)}"] .unit-count`).textContent = text;
  }
}

function highlight() {
  const job = jobs.find((j) => j.id === (pointedJob ?? pinnedJob));
  const held = new Set(job ? job.nodelist : []);
  for (const [name, tile] of tiles) {
    tile.classList.toggle('highlight', held.has(name));
    tile.classList.toggle('selected', name === chosenNode);
    tile.setAttribute('aria-pressed', String(name === chosenNode));
  }
  for (const button of jobsList.querySelectorAll('button[data-job]')) {
    button.setAttribute('aria-pressed', String(Number(button.dataset.job) === pinnedJob));
  }
}

function jobButton(job) {
  const id = job.id;
  return el('button', {
    type: 'button', 'data-job': id, 'aria-pressed': 'false',
    onclick: () => { pinnedJob = pinnedJob === id ? null : id; showSelection(); highlight(); },
    onmouseenter: () => { pointedJob = id; highlight(); },
    onmouseleave: () => { pointedJob = null; highlight(); },
    onfocus: () => { pointedJob = id; highlight(); },
    onblur: () => { pointedJob = null; highlight(); },
  }, jobText(job));
}

function jobText(job) {
  return `${job.id} · ${job.name} · ${job.user} · ${job.nodelist.length} node${job.nodelist.length === 1 ? '' : 's'}`;
}

// The buttons of jobs still running stay in the document from one refresh to the next: a
// button replaced under the pointer never hears the pointer leave, so its outline would stay.
function listJobs() {
  if (!jobs.some((j) => j.id === pointedJob)) pointedJob = null;
  if (!jobs.length) {
    jobsList.replaceChildren(el('li', {}, 'No job is running.'));
    return;
  }
  const shown = new Map();
  for (const button of jobsList.querySelectorAll('button[data-job]')) {
    shown.set(Number(button.dataset.job), button.parentElement);
  }
  const items = jobs.map((job) => {
    const item = shown.get(job.id);
    if (!item) return el('li', {}, jobButton(job));
    const text = jobText(job);
    if (item.firstChild.textContent !== text) item.firstChild.textContent = text;
    return item;
  });
  const keep = new Set(items);
  for (const child of [...jobsList.children]) if (!keep.has(child)) child.remove();
  items.forEach((item, k) => {
    if (jobsList.children[k] !== item) jobsList.insertBefore(item, jobsList.children[k] ?? null);
  });
}

function chooseNode(name) {
  chosenNode = chosenNode === name ? null : name;
  showSelection();
  highlight();
}

function showSelection() {
  const parts = [];
  const node = nodes.find((n) => n.name === chosenNode);
  if (node) {
    const here = jobs.filter((j) => j.nodelist.includes(node.name));
    parts.push(el('h3', {}, `Node ${node.name}`),
      el('dl', { class: 'kv' },
        el('div', {}, el('dt', {}, 'Unit'), el('dd', {}, node.su)),
        el('div', {}, el('dt', {}, 'State'), el('dd', {}, node.state)),
        el('div', {}, el('dt', {}, 'GPUs'), el('dd', {}, `${node.gpus_allocated} of ${node.gpus} allocated`)),
        node.reason ? el('div', {}, el('dt', {}, 'Reason'), el('dd', {}, node.reason)) : null),
      here.length
        ? el('ul', { class: 'plain-list' }, here.map((j) => el('li', {},
          el('a', { href: `/jobs/${j.id}` }, `Job ${j.id}`), ` ${j.name} (${j.user})`)))
        : el('p', {}, 'No job runs here.'));
  }
  const job = jobs.find((j) => j.id === pinnedJob);
  if (job) {
    parts.push(el('h3', {}, 'Job ', el('a', { href: `/jobs/${job.id}` }, String(job.id))),
      el('dl', { class: 'kv' },
        el('div', {}, el('dt', {}, 'Name'), el('dd', {}, job.name)),
        el('div', {}, el('dt', {}, 'User'), el('dd', {}, job.user)),
        el('div', {}, el('dt', {}, 'Project'), el('dd', {}, job.project)),
        el('div', {}, el('dt', {}, 'GPUs'), el('dd', {}, String(job.gpus))),
        el('div', {}, el('dt', {}, 'Nodes'), el('dd', { class: 'mono' }, hostlist(job.nodelist)))));
  }
  selection.replaceChildren(...(parts.length ? parts : [el('p', {}, 'Nothing chosen.')]));
}

function totals(cluster) {
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  const pct = cluster.gpus ? (100 * cluster.gpus_allocated) / cluster.gpus : 0;
  set('t-gpus', `${number(cluster.gpus_allocated)} of ${number(cluster.gpus)} (${pct.toFixed(1)}%)`);
  const inUse = (cluster.nodes_by_state.mixed || 0) + (cluster.nodes_by_state.allocated || 0);
  set('t-nodes', `${number(inUse)} of ${number(cluster.nodes)}`);
  set('t-queue', `${number(cluster.jobs_by_state.PENDING || 0)} pending`);
  set('t-running', number(cluster.jobs_by_state.RUNNING || 0));
  // The telemetry sampler's machine power (docs/telemetry.md); none before its first tick.
  set('t-power', typeof cluster.power_w === 'number' ? `${(cluster.power_w / 1000).toFixed(1)} kW` : '—');
}

async function refresh() {
  const [nodeList, queue, cluster] = await Promise.all([
    api('/v1/nodes'), api('/v1/queue?state=RUNNING'), api('/v1/cluster')]);
  nodes = nodeList.nodes;
  jobs = queue.jobs;
  if (pinnedJob !== null && !jobs.some((j) => j.id === pinnedJob)) pinnedJob = null;
  layout();
  paintNodes();
  listJobs();
  showSelection();
  highlight();
  totals(cluster);
}

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') { pinnedJob = null; chosenNode = null; showSelection(); highlight(); }
});

live(refresh);
