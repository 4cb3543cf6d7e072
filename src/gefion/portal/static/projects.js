// The projects index: the projects the principal may see (all of them for operators and
// admins), with their shares and jobs in the queue, and a form to open one by name.
import { api, el, live } from './lib.js';

const list = document.getElementById('projects');

async function refresh() {
  const [projects, queue] = await Promise.all([api('/v1/projects'), api('/v1/queue')]);
  const counts = new Map();
  for (const job of queue.jobs) {
    const c = counts.get(job.project) || { pending: 0, running: 0 };
    c[job.state === 'RUNNING' ? 'running' : 'pending'] += 1;
    counts.set(job.project, c);
  }
  if (!projects.projects.length) {
    list.replaceChildren(el('li', {}, 'You belong to no project yet.'));
    return;
  }
  const rows = [...projects.projects].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(...rows.map((p) => {
    const c = counts.get(p.name) || { pending: 0, running: 0 };
    const role = p.your_role ? `, you are ${p.your_role === 'lead' ? 'a lead' : 'a member'}` : '';
    return el('li', {}, el('a', { href: `/projects/${encodeURIComponent(p.name)}` }, p.name),
      ` — ${p.shares} share${p.shares === 1 ? '' : 's'}${role}; ${c.running} running, ${c.pending} pending`);
  }));
}

live(refresh);
