// Instances: server-side filters kept in the URL, cursor pages, live.
import { h, mount, badge, time, ago, empty, errorBox, debounce } from '../dom.js';
import { api, get, live } from '../api.js';
import { STATUSES } from './overview.js';

const FILTERS = ['status', 'definition', 'version', 'businessKey', 'createdAfter', 'createdBefore'];

export async function instances(main, { query, go }) {
  document.title = 'Instances · Waymark';
  const q = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || '']));
  const cursor = query.get('cursor') || '';
  const back = query.get('back') || ''; // the cursors of earlier pages, for "Previous"

  // The definitions (for the filter) and the first page load together.
  const defsP = get('/definitions').catch(() => ({ items: [] }));
  let firstP = api('GET', '/instances', { query: { ...q, cursor: query.get('cursor') || '', limit: 50 } });
  firstP.catch(() => {});
  const defs = await defsP;
  const toLocal = (iso) => { if (!iso) return ''; const d = new Date(iso); return isNaN(d) ? '' : new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter instances' },
    field('f-status', 'Status', h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'any'),
      STATUSES.map((s) => h('option', { value: s, selected: q.status === s }, s)))),
    field('f-def', 'Definition', h('select', { id: 'f-def', name: 'definition' }, h('option', { value: '' }, 'any'),
      defs.items.map((d) => h('option', { value: d.id, selected: q.definition === d.id }, d.id)))),
    field('f-ver', 'Version', h('input', { id: 'f-ver', name: 'version', type: 'number', min: 1, value: q.version, inputmode: 'numeric', class: 'narrow' })),
    field('f-key', 'Business key', h('input', { id: 'f-key', name: 'businessKey', value: q.businessKey })),
    field('f-after', 'Created after', h('input', { id: 'f-after', name: 'createdAfter', type: 'datetime-local', value: toLocal(q.createdAfter) })),
    field('f-before', 'Created before', h('input', { id: 'f-before', name: 'createdBefore', type: 'datetime-local', value: toLocal(q.createdBefore) })),
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'btn primary' }, 'Filter'),
      h('a', { href: '#/instances', class: 'btn' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const f of FILTERS) {
      let v = form.elements[f].value.trim();
      if (v && (f === 'createdAfter' || f === 'createdBefore')) v = new Date(v).toISOString();
      if (v) p.set(f, v);
    }
    go('/instances' + (p.toString() ? '?' + p : ''));
  });

  const list = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' });
  const timing = h('p', { class: 'muted small', id: 'list-timing' });
  mount(main, h('h1', null, 'Instances'), form, list, timing);

  const load = async () => {
    const t0 = performance.now();
    let res;
    try {
      res = await (firstP || api('GET', '/instances', { query: { ...q, cursor, limit: 50 } }));
    } catch (err) {
      firstP = null;
      mount(list, errorBox(err));
      return;
    }
    firstP = null;
    const page = res.data;
    const link = (extra) => {
      const p = new URLSearchParams();
      for (const f of FILTERS) if (q[f]) p.set(f, q[f]);
      for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
      return '#/instances?' + p;
    };
    const backs = back ? back.split(',') : [];
    const prev = backs.length ? link({ cursor: backs[backs.length - 1] === '-' ? '' : backs[backs.length - 1], back: backs.slice(0, -1).join(',') }) : null;
    const next = page.nextCursor ? link({ cursor: page.nextCursor, back: [...backs, cursor || '-'].join(',') }) : null;
    mount(list,
      page.items.length ? h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Instances table' }, h('table', { class: 'grid instances' },
        h('caption', { class: 'sr-only' }, 'Instances, newest first'),
        h('thead', null, h('tr', null, ['Instance', 'Definition', 'Status', 'Business key', 'Created', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, page.items.map((i) => h('tr', { 'data-id': i.id },
          h('td', null, h('a', { href: '#/instances/' + encodeURIComponent(i.id), class: 'mono' }, i.id)),
          h('td', null, `${i.definition} v${i.version}`),
          h('td', null, badge(i.status), i.error ? h('span', { class: 'muted small' }, ' ' + i.error.message) : null),
          h('td', null, i.businessKey || ''),
          h('td', null, time(i.createdAt)),
          h('td', { title: i.updatedAt }, ago(i.updatedAt))))))) : empty('No instances match.'),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        prev ? h('a', { href: prev, class: 'btn', rel: 'prev' }, '← Previous') : null,
        cursor ? h('a', { href: link({}), class: 'btn' }, 'Newest') : null,
        next ? h('a', { href: next, class: 'btn', rel: 'next' }, 'Next →') : null));
    list.removeAttribute('aria-busy');
    const rendered = performance.now() - t0;
    timing.textContent = `${page.items.length} shown · server ${res.ms.toFixed(0)} ms · rendered in ${rendered.toFixed(0)} ms`;
    timing.dataset.serverMs = res.ms.toFixed(1);
    timing.dataset.renderMs = rendered.toFixed(1);
    performance.mark('waymark:rendered');
  };
  await load();
  return live(q.definition ? { definition: q.definition } : {}, debounce((ev) => {
    if (!ev || ev.type.startsWith('instance.') || ev.type.startsWith('activity.')) load();
  }, 500));
}

function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}
