// Overview: what needs an operator now (the attention list), then the
// instances by definition and status, and starts and ends in the last hour.
import { h, mount, section, badge, ago, empty, errorBox, debounce } from '../dom.js';
import { api, get, live, config } from '../api.js';

const STATUSES = ['running', 'waiting', 'suspended', 'compensating', 'failed', 'completed', 'cancelled', 'timed_out'];

export async function overview(main) {
  document.title = 'Overview · Waymark';
  const attention = h('div', { 'aria-busy': 'true' });
  const stats = h('div');
  const dead = h('div');
  mount(main,
    h('h1', null, 'Overview'),
    section('Needs attention', attention),
    h('div', { class: 'cols' }, section('Instances', stats), section('Dead letters', dead)));
  const refresh = async () => {
    await Promise.all([drawAttention(attention), drawStats(stats), drawDead(dead)]);
    attention.removeAttribute('aria-busy');
  };
  await refresh();
  return live({}, debounce(refresh, 400));
}

// optional answers a route's data, or null when this server has no such
// route. The OpenAPI document says which routes exist, so the browser never
// logs a 404 for a missing one.
let spec;
async function hasRoute(path) {
  if (!spec) spec = fetch(config.api + '/openapi.json').then((r) => r.json()).catch(() => ({ paths: {} }));
  return !!(await spec).paths[config.api + path];
}

async function optional(path, query) {
  if (!(await hasRoute(path))) return null;
  return get(path, query);
}

async function drawAttention(el) {
  try {
    const items = [];
    const att = await optional('/attention');
    if (att) {
      for (const it of att.items || []) {
        items.push({ reason: it.reason, since: it.since, instance: it.instanceId, kind: it.kind || it.type || '', detail: it.detail || it.message || '' });
      }
    } else {
      // No /attention on this server: what the public lists show.
      const [susp, failed, brk] = await Promise.all([
        get('/instances', { status: 'suspended', limit: 20 }),
        get('/instances', { status: 'failed', limit: 20 }),
        get('/breakers'),
      ]);
      for (const i of susp.items) items.push({ kind: 'suspended', reason: 'suspended for manual intervention', since: i.updatedAt, instance: i.id, def: i.definition, detail: i.error ? i.error.message : '' });
      for (const i of failed.items) items.push({ kind: 'failed', reason: 'failed', since: i.updatedAt, instance: i.id, def: i.definition, detail: i.error ? i.error.message : '' });
      const ob = await optional('/outbox/stats').catch(() => null);
      for (const st of (ob && ob.items) || []) {
        if (st.dead) items.push({ kind: 'dead', reason: `${st.dead} event${st.dead > 1 ? 's' : ''} to ${st.sink} could not be delivered`, since: '', link: '#/dead-letters' });
        if (st.lagSeconds > 60) items.push({ kind: 'lag', reason: `sink ${st.sink} is ${Math.round(st.lagSeconds)} s behind (${st.pending} pending)`, since: '', link: '#/dead-letters' });
      }
      for (const b of brk.items) if (b.state !== 'closed') items.push({ kind: 'breaker', reason: `circuit breaker ${b.name} is ${b.state.replace('_', '-')}`, since: b.openedAt || b.updatedAt, breaker: b.name, detail: `${b.failures} failures in a row` });
      try {
        const open = await get('/tasks', { status: 'open', limit: 200 });
        const now = Date.now();
        for (const t of open.items) if (t.dueAt && new Date(t.dueAt) < now) items.push({ kind: 'overdue', reason: `task "${t.title || t.activityId}" is overdue`, since: t.dueAt, instance: t.instanceId });
      } catch { /* not every reader may list all tasks */ }
    }
    items.sort((a, b) => new Date(a.since || 0) - new Date(b.since || 0));
    if (!items.length) { mount(el, empty('Nothing needs you now.')); return; }
    mount(el, h('ul', { class: 'attention', 'aria-label': 'Attention list' }, items.map((it) => h('li', { class: 'att-' + it.kind },
      h('span', { class: 'att-kind' }, badge(it.kind)),
      h('span', { class: 'att-what' },
        it.instance ? h('a', { href: '#/instances/' + encodeURIComponent(it.instance) }, it.def ? `${it.def} ${it.instance.slice(-8)}` : it.instance) : null,
        it.breaker ? h('a', { href: '#/breakers' }, it.breaker) : null,
        it.link ? h('a', { href: it.link }, it.kind === 'dead' ? 'dead letters' : 'outbox') : null,
        ' — ', it.reason, it.detail ? h('span', { class: 'muted' }, ': ' + it.detail) : null),
      h('span', { class: 'att-since muted' }, it.since ? ago(it.since) : '')))),
    att ? null : h('p', { class: 'muted small' }, 'Retrying activities and long waits appear here on servers with GET /api/v1/attention.'));
  } catch (err) {
    mount(el, errorBox(err));
  }
}

async function drawStats(el) {
  try {
    const st = await get('/stats/instances');
    const defs = [...new Set(st.byStatus.map((r) => r.definition))].sort();
    const present = STATUSES.filter((s) => st.byStatus.some((r) => r.status === s));
    const count = (d, s) => (st.byStatus.find((r) => r.definition === d && r.status === s) || {}).count || 0;
    const total = st.byStatus.reduce((a, r) => a + r.count, 0);
    mount(el,
      h('p', { class: 'kpis' },
        h('span', { class: 'kpi' }, h('strong', null, String(total)), ' instances'),
        h('span', { class: 'kpi' }, h('strong', null, String(st.started)), ' started in the last hour'),
        h('span', { class: 'kpi' }, h('strong', null, String(st.ended)), ' ended in the last hour')),
      defs.length ? h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Table' }, h('table', { class: 'grid' },
        h('caption', { class: 'sr-only' }, 'Instances by definition and status'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Definition'), present.map((s) => h('th', { scope: 'col' }, badge(s))))),
        h('tbody', null, defs.map((d) => h('tr', null,
          h('th', { scope: 'row' }, h('a', { href: '#/definitions/' + encodeURIComponent(d) }, d)),
          present.map((s) => {
            const n = count(d, s);
            return h('td', { class: 'num' }, n ? h('a', { href: `#/instances?definition=${encodeURIComponent(d)}&status=${s}`, 'aria-label': `${n} ${s} instances of ${d}` }, String(n)) : '·');
          })))))) : empty('No instances yet.'));
  } catch (err) {
    mount(el, errorBox(err));
  }
}

async function drawDead(el) {
  try {
    const st = await optional('/outbox/stats');
    if (!st) { mount(el, h('p', { class: 'muted' }, 'Dead letters are not available on this server.')); return; }
    const dead = st.items.reduce((a, s) => a + s.dead, 0);
    const pending = st.items.reduce((a, s) => a + s.pending, 0);
    const lag = Math.max(0, ...st.items.map((s) => s.lagSeconds || 0));
    mount(el,
      dead ? h('p', null, h('a', { href: '#/dead-letters' }, `${dead} undeliverable event${dead > 1 ? 's' : ''}`), ' wait for a replay.') : empty('No dead letters.'),
      st.items.length ? h('p', { class: 'muted small' }, `${pending} pending on ${st.items.length} sink${st.items.length > 1 ? 's' : ''}`, lag ? `, the oldest ${lag.toFixed(1)} s` : '') : null);
  } catch (err) {
    mount(el, errorBox(err));
  }
}

export { optional, STATUSES, api };
