// Dead letters (outbox events that could not be delivered) and the shared
// circuit breakers.
import { h, mount, badge, time, ago, jsonView, parseJSON, empty, errorBox, announce, debounce } from '../dom.js';
import { api, live, may } from '../api.js';
import { optional } from './overview.js';

export async function deadLetters(main) {
  document.title = 'Dead letters · Waymark';
  const body = h('div', { 'aria-live': 'polite' });
  mount(main, h('h1', null, 'Dead letters'), h('p', { class: 'muted' }, 'Events the outbox gave up delivering. Replay sends them again.'), body);
  const load = async () => {
    let page;
    try { page = await optional('/outbox', { status: 'dead', limit: 100 }); } catch (err) { mount(body, errorBox(err)); return; }
    if (!page) { mount(body, h('p', { class: 'notice' }, 'Dead letters are not available on this server (no GET /api/v1/outbox).')); return; }
    const items = page.items || [];
    if (!items.length) { mount(body, empty('No dead letters.')); return; }
    const checks = new Map();
    const replay = async (ids) => {
      try {
        if (ids.length === 1) await api('POST', `/outbox/${encodeURIComponent(ids[0])}/replay`);
        else await api('POST', '/outbox/replay', { body: { ids } });
        announce(`Replayed ${ids.length} event${ids.length > 1 ? 's' : ''}`, 'ok');
        await load();
      } catch (err) { announce(err.message, 'error'); }
    };
    mount(body,
      may('operate') ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => { const ids = [...checks].filter(([, c]) => c.checked).map(([id]) => id); if (ids.length && confirm(`Replay ${ids.length} selected events?`)) replay(ids); } }, 'Replay selected'),
        h('button', { type: 'button', class: 'btn', onclick: () => { if (confirm(`Replay all ${items.length} shown events?`)) replay(items.map((e) => e.id)); } }, 'Replay all shown')) : null,
      h('ul', { class: 'cards' }, items.map((e) => {
        const cb = h('input', { type: 'checkbox', id: 'dl-' + e.id, 'aria-label': 'Select ' + e.id });
        checks.set(e.id, cb);
        return h('li', null, h('article', { class: 'card', 'data-event': e.id },
          h('h2', null, may('operate') ? cb : null, ' ', e.type || 'event', ' ', badge(e.status || 'dead')),
          h('p', { class: 'meta' }, e.instanceId ? h('a', { href: '#/instances/' + encodeURIComponent(e.instanceId), class: 'mono' }, e.instanceId) : null,
            ` · ${e.attempts ?? '?'} attempts · occurred `, time(e.occurredAt)),
          e.lastError ? h('div', { class: 'error' }, e.lastError) : null,
          e.payload ? jsonView(parseJSON(e.payload), 'payload', 1) : null,
          may('operate') ? h('button', { type: 'button', class: 'btn', onclick: () => replay([e.id]) }, 'Replay') : null));
      })));
  };
  await load();
  return live({}, debounce(load, 1000));
}

export async function breakers(main) {
  document.title = 'Breakers · Waymark';
  const body = h('div', { 'aria-live': 'polite' });
  mount(main, h('h1', null, 'Circuit breakers'), body);
  const load = async () => {
    let page;
    try { page = await optional('/breakers'); } catch (err) { mount(body, errorBox(err)); return; }
    if (!page) { mount(body, h('p', { class: 'notice' }, 'Breakers are not available on this server.')); return; }
    if (!page.items.length) { mount(body, empty('No breaker has recorded a call yet.')); return; }
    mount(body, h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Table' }, h('table', { class: 'grid' },
      h('caption', { class: 'sr-only' }, 'Circuit breakers'),
      h('thead', null, h('tr', null, ['Breaker', 'State', 'Failures in a row', 'Opened', 'Updated', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, page.items.map((b) => h('tr', null,
        h('th', { scope: 'row' }, b.name), h('td', null, badge(b.state)), h('td', { class: 'num' }, String(b.failures)),
        h('td', null, b.openedAt ? time(b.openedAt) : '—'), h('td', { title: b.updatedAt }, ago(b.updatedAt)),
        h('td', null, may('operate') && b.state !== 'closed' ? h('button', {
          type: 'button', class: 'btn small', onclick: async () => {
            if (!confirm(`Reset breaker ${b.name}? Calls go through again at once.`)) return;
            try { await api('POST', `/breakers/${encodeURIComponent(b.name)}/reset`); announce(`Breaker ${b.name} reset`, 'ok'); await load(); } catch (err) { announce(err.message, 'error'); }
          },
        }, 'Reset') : null)))))));
  };
  await load();
  return live({}, debounce((ev) => { if (!ev || ev.type.startsWith('breaker.')) load(); }, 500));
}
