// The instance inspector: the live process map with each activity's
// state, the execution log, data, waits, calls, relatives, and the
// operator's actions (confirmed, sent with If-Match).
import { h, mount, badge, time, ago, duration, jsonView, parseJSON, section, empty, errorBox, announce, debounce } from '../dom.js';
import { api, get, live, may } from '../api.js';
import { graphOf, activityStates, drawMap, legend } from '../graph.js';

export async function inspector(main, { parts, query, go }) {
  const id = parts[1];
  document.title = 'Instance ' + id.slice(-8) + ' · Waymark';
  const t0 = performance.now();
  const st = { inst: null, etag: '', log: [], selected: query.get('activity') || '', logFilter: '', failedOnly: false, serverMs: 0 };

  const head = h('div');
  const actions = h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Actions' });
  const mapEl = h('div', { class: 'map-panel' });
  const detail = h('div', { 'aria-live': 'polite' });
  const timeline = h('div');
  const data = h('div');
  const waits = h('div');
  const calls = h('div');
  const comp = h('div');
  const family = h('div');
  const timing = h('p', { class: 'muted small', id: 'inspector-timing' });
  mount(main, head, actions,
    section('Process map', legend(), mapEl, detail),
    h('div', { class: 'cols' },
      section('Timeline', timeline),
      h('div', null, section('Data', data), section('Waiting on', waits), section('External calls', calls),
        section('Compensation', comp), section('Parent and children', family))),
    timing);

  async function load() {
    // The log and the children need only the id: fetched with the
    // instance, not after it. The graph needs its definition version.
    const logP = get('/instances/' + encodeURIComponent(id) + '/log', { limit: 1000 });
    const childrenP = get('/instances', { parent: id, limit: 50 });
    logP.catch(() => {});
    childrenP.catch(() => {});
    const res = await api('GET', '/instances/' + encodeURIComponent(id));
    st.inst = res.data;
    st.etag = res.etag;
    st.serverMs = res.ms;
    const [logPage, graph, children] = await Promise.all([logP, graphOf(st.inst.definition, st.inst.version), childrenP]);
    st.log = logPage.items;
    st.more = !!logPage.nextCursor;
    st.graph = graph;
    st.children = children.items;
    draw();
  }

  function select(activity) {
    st.selected = st.selected === activity ? '' : activity;
    drawMapPanel();
    drawTimeline();
    const n = mapEl.querySelector(`[data-activity="${CSS.escape(activity)}"]`);
    if (n) n.focus();
  }

  function drawMapPanel() {
    const states = activityStates(st.inst, st.graph.graph);
    mount(mapEl, drawMap(st.graph, states, { selected: st.selected, onSelect: select, title: `Process map of ${st.inst.definition} v${st.inst.version}` }));
    if (!st.selected) { mount(detail, h('p', { class: 'muted small' }, 'Select an activity to see its executions.')); return; }
    const a = states.get(st.selected);
    const node = st.graph.graph.nodes.find((n) => n.id === st.selected);
    mount(detail, h('div', { class: 'exec-detail' },
      h('h3', null, `${node ? node.name || node.id : st.selected}`, h('span', { class: 'muted' }, node ? ` (${node.type}${node.detail ? ', ' + node.detail : ''})` : '')),
      a ? a.execs.map((x) => h('article', { class: 'exec' },
        h('p', null, badge(x.status), x.attempt ? ` attempt ${x.attempt}` : '', x.startedAt ? [' · started ', time(x.startedAt)] : null,
          x.finishedAt ? [' · took ', duration(x.startedAt, x.finishedAt)] : null),
        x.error ? errorDetail(x.error) : null,
        x.input ? jsonView(parseJSON(x.input), 'input') : null,
        x.output ? jsonView(parseJSON(x.output), 'output') : null)) : empty('Not reached.')));
  }

  function drawHead() {
    const i = st.inst;
    mount(head,
      h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, 'Instances'), ' / ',
        i.parentId ? [h('a', { href: '#/instances/' + encodeURIComponent(i.parentId) }, 'parent ' + i.parentId.slice(-8)), ' / '] : null,
        h('span', { class: 'mono' }, i.id)),
      h('h1', null, h('a', { href: `#/definitions/${encodeURIComponent(i.definition)}?v=${i.version}` }, `${i.definition} v${i.version}`), ' ', badge(i.status)),
      i.error ? h('div', { class: 'error banner-error', role: 'alert' }, h('strong', null, i.status === 'failed' ? 'Failed: ' : 'Last error: '), i.error.message,
        i.error.code ? h('span', { class: 'muted' }, ` (${i.error.code})`) : null) : null,
      h('dl', { class: 'facts' },
        fact('Business key', i.businessKey || '—'), fact('Created', time(i.createdAt)), fact('Updated', [time(i.updatedAt), ' ', h('span', { class: 'muted' }, ago(i.updatedAt))]),
        fact('Revision', h('span', { id: 'revision' }, String(i.revision))), i.deadline ? fact('Deadline', time(i.deadline)) : null));
  }

  function drawActions() {
    if (!may('operate')) { mount(actions); return; }
    const s = st.inst.status;
    const finished = ['completed', 'failed', 'cancelled', 'timed_out'].includes(s) && s !== 'failed';
    const skippable = (st.inst.activities || []).filter((x) => ['scheduled', 'waiting', 'failed'].includes(x.status));
    mount(actions,
      ['running', 'waiting'].includes(s) ? btn('Suspend', () => confirmAction('suspend', 'Suspend this instance? Nothing advances it until it is resumed.')) : null,
      s === 'suspended' ? btn('Resume', () => confirmAction('resume', 'Resume this instance?')) : null,
      ['failed', 'suspended'].includes(s) ? btn('Retry…', retryDialog) : null,
      skippable.length && !finished ? btn('Skip…', () => skipDialog(skippable)) : null,
      !['completed', 'failed', 'cancelled', 'timed_out'].includes(s) ? btn('Cancel…', cancelDialog, 'danger') : null);
  }

  // act sends an intervention with the revision the user saw.
  async function act(verb, body, etag) {
    try {
      const res = await api('POST', `/instances/${encodeURIComponent(id)}/${verb}`, { body, ifMatch: etag });
      st.inst = { ...st.inst, ...res.data };
      st.etag = res.etag;
      announce(`Done: ${verb}. The instance is ${res.data.status}.`, 'ok');
      await load();
      return true;
    } catch (err) {
      if (err.status === 412 || err.status === 409) {
        announce('This instance changed since you loaded it (' + err.message + '). Nothing was done: look at its new state, then try again.', 'error');
        await load();
        return true;
      }
      throw err;
    }
  }

  function dialog(title, body, verb, collect, danger) {
    const etag = st.etag; // the revision this decision is about
    const err = h('div');
    const dlg = h('dialog', { class: 'dlg', 'aria-labelledby': 'dlg-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dlg-title' }, title), body, err,
        h('p', { class: 'muted small' }, `Sent for revision ${etag.replace(/"/g, '')}; if someone changes the instance first, nothing is done.`),
        h('div', { class: 'dlg-actions' },
          h('button', { type: 'button', class: 'btn', value: 'cancel', onclick: () => dlg.close() }, 'Back'),
          h('button', { type: 'submit', class: ['btn', danger ? 'danger' : 'primary'], value: 'ok' }, 'Confirm ' + verb))));
    dlg.querySelector('form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let payload;
      try { payload = collect ? collect() : undefined; } catch (e) { mount(err, errorBox({ message: e.message })); return; }
      try {
        if (await act(verb, payload, etag)) dlg.close();
      } catch (e) {
        mount(err, errorBox(e));
      }
    });
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
    return dlg;
  }

  function confirmAction(verb, text) { dialog(verb[0].toUpperCase() + verb.slice(1) + ' instance', h('p', null, text), verb); }

  function retryDialog() {
    const vars = JSON.stringify(parseJSON(st.inst.variables) || {}, null, 2);
    const ta = h('textarea', { id: 'retry-vars', rows: 8, class: 'mono' }, vars);
    const reason = h('input', { id: 'retry-reason', placeholder: 'why, for the log' });
    dialog('Retry instance', [
      h('p', null, 'Runs the failed activity again. Edit the variables to retry with corrected data; only changed variables are sent.'),
      h('div', { class: 'field' }, h('label', { for: 'retry-vars' }, 'Variables (JSON)'), ta),
      h('div', { class: 'field' }, h('label', { for: 'retry-reason' }, 'Reason'), reason)], 'retry', () => {
      const before = parseJSON(st.inst.variables) || {};
      const after = JSON.parse(ta.value || '{}');
      const changed = {};
      for (const [k, v] of Object.entries(after)) if (JSON.stringify(before[k]) !== JSON.stringify(v)) changed[k] = v;
      const body = {};
      if (Object.keys(changed).length) body.vars = changed;
      if (reason.value.trim()) body.reason = reason.value.trim();
      return body;
    });
  }

  function skipDialog(execs) {
    const sel = h('select', { id: 'skip-activity' }, execs.map((x) => h('option', { value: x.activityId }, `${x.activityId} (${x.status})`)));
    const out = h('textarea', { id: 'skip-output', rows: 5, class: 'mono' }, '{}');
    dialog('Skip an activity', [
      h('p', null, 'Completes the activity as if it had run, with the output you give.'),
      h('div', { class: 'field' }, h('label', { for: 'skip-activity' }, 'Activity'), sel),
      h('div', { class: 'field' }, h('label', { for: 'skip-output' }, 'Output (JSON)'), out)], 'skip',
    () => ({ activity: sel.value, output: JSON.parse(out.value || 'null') }));
  }

  function cancelDialog() {
    const reason = h('input', { id: 'cancel-reason' });
    const compensate = h('input', { id: 'cancel-compensate', type: 'checkbox' });
    dialog('Cancel instance', [
      h('p', null, 'Stops the instance for good.'),
      h('div', { class: 'field' }, h('label', { for: 'cancel-reason' }, 'Reason'), reason),
      h('div', { class: 'field field-check' }, compensate, h('label', { for: 'cancel-compensate' }, 'Compensate completed work first'))], 'cancel',
    () => ({ reason: reason.value.trim() || undefined, compensate: compensate.checked }), true);
  }

  function drawTimeline() {
    const filterId = 'log-filter';
    const rows = st.log.filter((l) => (!st.failedOnly || /failed|retrying|timed_out|suspended|expired/.test(l.event))
      && (!st.selected || l.activityId === st.selected || !l.activityId)
      && (!st.logFilter || JSON.stringify(l).toLowerCase().includes(st.logFilter)));
    const input = h('input', { id: filterId, type: 'search', value: st.logFilter, placeholder: 'text in an entry' });
    input.addEventListener('input', debounce(() => { st.logFilter = input.value.toLowerCase(); drawTimeline(); document.getElementById(filterId).focus(); }, 250));
    const failed = h('input', { id: 'log-failed', type: 'checkbox', checked: st.failedOnly, onchange: (ev) => { st.failedOnly = ev.target.checked; drawTimeline(); } });
    let prev = null;
    mount(timeline,
      h('div', { class: 'log-tools' },
        h('div', { class: 'field' }, h('label', { for: filterId }, 'Filter'), input),
        h('div', { class: 'field field-check' }, failed, h('label', { for: 'log-failed' }, 'Failures only')),
        st.selected ? h('button', { type: 'button', class: 'btn small', onclick: () => select(st.selected) }, `Only ${st.selected} — show all`) : null),
      rows.length ? h('ol', { class: 'log', tabindex: 0, 'aria-label': 'Execution log' }, rows.map((l) => {
        const gap = prev ? new Date(l.at) - new Date(prev.at) : 0;
        prev = l;
        return h('li', { class: ['log-' + l.event.split('.')[1], /failed/.test(l.event) ? 'log-bad' : ''] },
          gap > 60000 ? h('div', { class: 'gap muted small' }, `… ${duration(new Date(0), new Date(gap))} later`) : null,
          h('span', { class: 'log-when' }, time(l.at)),
          h('span', { class: 'log-event' }, l.event),
          l.activityId ? h('button', { type: 'button', class: 'linkish', onclick: () => select(l.activityId) }, l.activityId) : null,
          l.actor ? h('span', { class: 'muted' }, ' by ' + l.actor) : null,
          l.details ? jsonView(parseJSON(l.details), 'details', 2) : null);
      })) : empty('No entries.'),
      st.more ? h('p', { class: 'muted small' }, 'The first 1000 entries are shown.') : null);
  }

  function drawData() {
    const i = st.inst;
    mount(data, jsonView(parseJSON(i.input), 'input'), jsonView(parseJSON(i.variables) || {}, 'variables'),
      i.output ? jsonView(parseJSON(i.output), 'output') : null);
    const open = (i.bookmarks || []).filter((b) => !b.consumed);
    mount(waits, open.length ? h('ul', { class: 'plain' }, open.map((b) => h('li', null,
      badge(b.type), ' ', b.activityId ? h('button', { type: 'button', class: 'linkish', onclick: () => select(b.activityId) }, b.activityId) : 'deadline',
      b.message ? ` message ${b.message}` : '', b.correlation ? ` (correlation ${b.correlation})` : '',
      b.dueAt ? [' due ', time(b.dueAt), ' ', h('span', { class: 'muted' }, ago(b.dueAt))] : null,
      b.type === 'UserAction' ? [' · ', h('a', { href: '#/tasks?view=all&instance=' + encodeURIComponent(i.id) }, 'open the task')] : null))) : empty('Not waiting.'));
    const httpExecs = (i.activities || []).filter((x) => x.type === 'http');
    mount(calls, httpExecs.length ? h('ul', { class: 'plain' }, httpExecs.map((x) => h('li', null,
      h('button', { type: 'button', class: 'linkish', onclick: () => select(x.activityId) }, x.activityId), ' ', badge(x.status), ` attempt ${x.attempt}`,
      x.error ? h('span', { class: 'muted' }, ' — ' + x.error.message) : null))) : empty('No external calls.'));
    const compLog = st.log.filter((l) => /compensat/.test(l.event) || (l.details && /compensat/.test(l.details)));
    mount(comp, compLog.length ? h('ul', { class: 'plain' }, compLog.map((l) => h('li', null, time(l.at), ' ', l.event, l.activityId ? ' ' + l.activityId : ''))) : empty('Nothing compensated.'));
    mount(family,
      i.parentId ? h('p', null, 'Parent: ', h('a', { href: '#/instances/' + encodeURIComponent(i.parentId), class: 'mono' }, i.parentId)) : null,
      st.children.length ? h('ul', { class: 'plain' }, st.children.map((c) => h('li', null,
        h('a', { href: '#/instances/' + encodeURIComponent(c.id), class: 'mono' }, c.id), ` ${c.definition} v${c.version} `, badge(c.status)))) : null,
      !i.parentId && !st.children.length ? empty('No parent, no children.') : null);
  }

  function draw() {
    drawHead();
    drawActions();
    drawMapPanel();
    drawTimeline();
    drawData();
  }

  try {
    await load();
  } catch (err) {
    if (err.status === 404) { mount(main, h('h1', null, 'Instance not found'), h('p', null, h('code', null, id))); return null; }
    throw err;
  }
  const rendered = performance.now() - t0;
  timing.textContent = `server ${st.serverMs.toFixed(0)} ms · first render ${rendered.toFixed(0)} ms`;
  timing.dataset.serverMs = st.serverMs.toFixed(1);
  timing.dataset.renderMs = rendered.toFixed(1);
  performance.mark('waymark:rendered');
  return live({ instance: id }, debounce(() => load().catch(() => {}), 150));
}

function fact(k, v) { return h('div', null, h('dt', null, k), h('dd', null, v)); }

function btn(label, onclick, kind) {
  return h('button', { type: 'button', class: ['btn', kind || ''], onclick }, label);
}

function errorDetail(e) {
  return h('div', { class: 'error' }, h('strong', null, e.code ? e.code + ': ' : ''), e.message,
    e.retryable !== undefined ? h('span', { class: 'muted' }, e.retryable ? ' (retryable)' : ' (permanent)') : null,
    e.stack ? h('pre', null, e.stack) : null);
}
