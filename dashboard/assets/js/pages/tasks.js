// The task inbox: mine, claimable by my roles, all (readers); claim,
// unclaim, complete with the outcome buttons and the task's form.
import { h, mount, badge, time, ago, empty, errorBox, announce, debounce } from '../dom.js';
import { api, get, live, may, currentUser } from '../api.js';
import { schemaForm } from '../form.js';

export async function tasks(main, { query, go }) {
  document.title = 'Tasks · Waymark';
  const me = currentUser();
  const views = [['mine', 'Assigned to me'], ['claimable', 'Claimable by my roles']];
  if (may('read')) views.push(['all', 'All open tasks']);
  const view = views.some(([v]) => v === query.get('view')) ? query.get('view') : 'mine';
  const instance = query.get('instance') || '';
  const list = h('div', { 'aria-live': 'polite' });
  const open = new Set(); // tasks whose form is open, kept across refreshes

  mount(main,
    h('h1', null, 'Tasks'),
    h('nav', { class: 'tabs', 'aria-label': 'Inbox views' }, h('ul', null, views.map(([v, label]) =>
      h('li', null, h('a', { href: '#/tasks?view=' + v + (instance ? '&instance=' + encodeURIComponent(instance) : ''), 'aria-current': v === view ? 'page' : false }, label))))),
    instance ? h('p', { class: 'muted' }, 'Tasks of instance ', h('a', { href: '#/instances/' + encodeURIComponent(instance), class: 'mono' }, instance), ' · ', h('a', { href: '#/tasks?view=' + view }, 'all instances')) : null,
    list);

  const fetchTasks = async () => {
    const base = instance ? { instance } : {};
    if (view === 'mine') return (await get('/tasks', { ...base, assignee: me.user, limit: 200 })).items;
    if (view === 'all') return (await get('/tasks', { ...base, limit: 200 })).items;
    const seen = new Map();
    for (const role of me.roles) {
      for (const t of (await get('/tasks', { ...base, role, limit: 200 })).items) if (!t.assignee) seen.set(t.id, t);
    }
    return [...seen.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  };

  const load = async () => {
    let items;
    try { items = await fetchTasks(); } catch (err) { mount(list, errorBox(err)); return; }
    // Keep a form the user is filling in: redraw only what changed.
    const active = document.activeElement && list.contains(document.activeElement) ? document.activeElement.id : '';
    const keep = new Map();
    for (const card of list.querySelectorAll('article[data-task]')) if (open.has(card.dataset.task)) keep.set(card.dataset.task, card);
    mount(list, items.length ? h('ul', { class: 'cards' }, items.map((t) => {
      const kept = keep.get(t.id);
      if (kept && kept.dataset.rev === String(t.revision)) return h('li', null, kept);
      return h('li', null, card(t));
    })) : empty(view === 'mine' ? 'Nothing assigned to you.' : 'No open tasks.'));
    if (active && document.getElementById(active)) document.getElementById(active).focus();
  };

  function mayComplete(t) {
    if (me.roles.includes('admin')) return true;
    if (!t.assignee && !(t.candidateRoles || []).length) return true;
    if (t.assignee) return t.assignee === me.user;
    return (t.candidateRoles || []).some((r) => me.roles.includes(r));
  }

  function card(t) {
    const overdue = t.dueAt && new Date(t.dueAt) < Date.now();
    const titleId = 'task-' + t.id;
    const err = h('div');
    const art = h('article', { class: ['card', overdue ? 'overdue' : ''], 'data-task': t.id, 'data-rev': t.revision, 'aria-labelledby': titleId },
      h('h2', { id: titleId }, t.title || t.activityId),
      h('p', { class: 'meta' },
        badge(t.status), ' ',
        t.assignee ? ['assigned to ', h('strong', null, t.assignee === me.user ? 'you' : t.assignee)] : 'unassigned',
        (t.candidateRoles || []).length ? ` · for ${t.candidateRoles.join(', ')}` : '',
        t.dueAt ? [' · due ', time(t.dueAt), ' ', overdue ? h('span', { class: 'badge st-failed' }, 'overdue') : h('span', { class: 'muted' }, ago(t.dueAt))] : null,
        ' · created ', h('span', { title: t.createdAt }, ago(t.createdAt))),
      may('read') ? h('p', { class: 'small' }, h('a', { href: '#/instances/' + encodeURIComponent(t.instanceId) + '?activity=' + encodeURIComponent(t.activityId) }, 'instance ' + t.instanceId.slice(-8))) : null,
      err);
    const actions = h('div', { class: 'actions' });
    const can = mayComplete(t);
    const etag = `"${t.revision}"`;
    const run = async (verb, body) => {
      mount(err);
      try {
        await api('POST', `/tasks/${encodeURIComponent(t.id)}/${verb}`, { body, ifMatch: etag });
        open.delete(t.id);
        announce(verb === 'complete' ? `Completed "${t.title || t.activityId}"` : `Task ${verb}ed`, 'ok');
        await load();
      } catch (e) {
        if (e.status === 422 && verb === 'complete' && formCtl) {
          const rest = formCtl.showErrors(e.details);
          mount(err, errorBox({ message: e.message, details: rest }));
        } else if (e.status === 412 || e.status === 409) {
          mount(err, errorBox({ message: 'This task changed since you loaded it (' + e.message + '). Nothing was done.' }));
          setTimeout(load, 1500);
        } else {
          mount(err, errorBox(e));
        }
      }
    };
    if (!t.assignee && can) actions.append(h('button', { type: 'button', class: 'btn', onclick: () => run('claim') }, 'Claim'));
    if (t.assignee && (t.assignee === me.user || me.roles.includes('admin')) && (t.candidateRoles || []).length) {
      actions.append(h('button', { type: 'button', class: 'btn', onclick: () => run('unclaim') }, 'Unclaim'));
    }
    let formCtl = null;
    if (can) {
      formCtl = schemaForm(t.form);
      const outcomes = t.outcomes && t.outcomes.length ? t.outcomes : [''];
      const form = h('form', { class: 'task-form', novalidate: true, 'aria-label': 'Complete ' + (t.title || t.activityId) }, t.form ? formCtl.el : null,
        h('div', { class: 'outcomes', role: 'group', 'aria-label': 'Outcome' }, outcomes.map((o) =>
          h('button', { type: 'submit', class: 'btn primary', value: o, 'data-outcome': o }, o ? cap(o) : 'Complete'))));
      form.addEventListener('focusin', () => open.add(t.id));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const outcome = ev.submitter ? ev.submitter.value : outcomes[0];
        let dataVal;
        try { dataVal = t.form ? formCtl.value() : undefined; } catch (e) { mount(err, errorBox({ message: e.message })); return; }
        run('complete', { outcome: outcome || undefined, data: dataVal });
      });
      art.append(form);
    } else {
      art.append(h('p', { class: 'muted small' }, 'You may not complete this task.'));
    }
    art.append(actions);
    return art;
  }

  await load();
  return live({}, debounce((ev) => { if (!ev || ev.type.startsWith('task.') || ev.type.startsWith('instance.')) load(); }, 300));
}

function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }
