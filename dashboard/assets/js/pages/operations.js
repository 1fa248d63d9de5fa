// Dead letters (outbox events that could not be delivered) and the shared
// circuit breakers.
import { h, mount, badge, time, ago, jsonView, parseJSON, empty, errorBox, announce, debounce } from '../dom.js';
import { api, live, may } from '../api.js';
import { optional } from './overview.js';

export async function deadLetters(main, { query }) {
  document.title = 'Dead letters · Waymark';
  const body = h('div', { 'aria-live': 'polite' });
  const backlog = h('div');
  mount(main, h('h1', null, 'Dead letters'),
    h('p', { class: 'muted' }, 'Events a sink gave up delivering. Replay sends them again, keeping their ids; the sink gets them in order.'),
    backlog, body);
  const cursor = query.get('cursor') || '';
  const load = async () => {
    let page;
    try { page = await optional('/outbox', { status: 'dead', limit: 100, cursor }); } catch (err) { mount(body, errorBox(err)); return; }
    if (!page) { mount(body, h('p', { class: 'notice' }, 'Dead letters are not available on this server (no GET /api/v1/outbox).')); return; }
    drawBacklog(backlog);
    const items = page.items || [];
    if (!items.length) { mount(body, empty('No dead letters.')); return; }
    const checks = new Map();
    // replay replays each event on its own and reports what each did.
    const replay = async (ids) => {
      const failed = [];
      for (const id of ids) {
        try { await api('POST', `/outbox/${encodeURIComponent(id)}/replay`); } catch (err) { failed.push(`${id}: ${err.message}`); }
      }
      const ok = ids.length - failed.length;
      announce(`Replayed ${ok} of ${ids.length} event${ids.length > 1 ? 's' : ''}${failed.length ? '; not replayed: ' + failed.join('; ') : ''}`, failed.length ? 'error' : 'ok');
      await load();
    };
    const replayAll = async () => {
      if (!confirm('Replay every dead event, on every sink?')) return;
      try {
        const r = (await api('POST', '/outbox/replay', { body: { all: true } })).data;
        announce(`Replayed ${r.replayed} events`, 'ok');
      } catch (err) { announce(err.message, 'error'); }
      await load();
    };
    const ids = [...new Set(items.map((e) => e.id))];
    mount(body,
      may('operate') ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => { const sel = [...checks].filter(([, c]) => c.checked).map(([id]) => id); if (sel.length && confirm(`Replay ${sel.length} selected events?`)) replay(sel); } }, 'Replay selected'),
        h('button', { type: 'button', class: 'btn', onclick: replayAll }, 'Replay all')) : null,
      h('ul', { class: 'cards' }, items.map((e) => {
        const key = e.id + '@' + e.sink;
        const cb = h('input', { type: 'checkbox', id: 'dl-' + key, 'aria-label': `Select ${e.type} ${e.id}` });
        if (!checks.has(e.id)) checks.set(e.id, cb);
        return h('li', null, h('article', { class: 'card', 'data-event': e.id, 'aria-label': `${e.type} for ${e.sink}` },
          h('h2', null, may('operate') ? cb : null, ' ', e.type, ' ', badge(e.status), ' ', h('span', { class: 'muted small' }, 'to ' + e.sink)),
          h('p', { class: 'meta' }, e.instanceId ? h('a', { href: '#/instances/' + encodeURIComponent(e.instanceId), class: 'mono' }, e.instanceId.slice(-12)) : null,
            ` · ${e.attempts} attempts · occurred `, time(e.occurredAt), ' · given up ', h('span', { title: e.updatedAt }, ago(e.updatedAt))),
          e.lastError ? h('div', { class: 'error' }, e.lastError) : null,
          (e.history || []).length > 1 ? h('details', null, h('summary', null, `Every attempt (${e.history.length})`),
            h('ol', { class: 'plain' }, e.history.map((a) => h('li', null, time(a.at), ' ', a.error)))) : null,
          e.data ? jsonView(parseJSON(e.data), 'data', 1) : null,
          may('operate') ? h('button', { type: 'button', class: 'btn', onclick: () => replay([e.id]) }, 'Replay') : null));
      })),
      page.next ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, h('a', { class: 'btn', href: '#/dead-letters?cursor=' + encodeURIComponent(page.next) }, 'Next →')) : null,
      ids.length < items.length ? h('p', { class: 'muted small' }, 'An event dead on several sinks is listed once per sink; replay sends it again to each.') : null);
  };
  await load();
  return live({}, debounce(load, 1000));
}

async function drawBacklog(el) {
  try {
    const st = await optional('/outbox/stats');
    if (!st || !st.items.length) { mount(el); return; }
    mount(el, h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Delivery backlog' }, h('table', { class: 'grid' },
      h('caption', null, 'Delivery backlog per sink'),
      h('thead', null, h('tr', null, ['Sink', 'Pending', 'Lag', 'Retrying', 'Held', 'Dead'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, st.items.map((s) => h('tr', null, h('th', { scope: 'row' }, s.sink), h('td', { class: 'num' }, String(s.pending)),
        h('td', { class: 'num' }, s.lagSeconds ? s.lagSeconds.toFixed(1) + ' s' : '—'), h('td', { class: 'num' }, String(s.retrying)),
        h('td', { class: 'num' }, String(s.held)), h('td', { class: 'num' }, String(s.dead))))))));
  } catch (err) {
    mount(el, errorBox(err));
  }
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
