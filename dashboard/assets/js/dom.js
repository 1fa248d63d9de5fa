// Small DOM helpers: h() builds elements, and the shared widgets (status
// badges, times, the collapsible JSON view).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'required' || k === 'open') {
      el[k] = !!v;
      if (k === 'disabled' || k === 'required') el.setAttribute(k, '');
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Status words and the class that colours them.
export function badge(status) {
  return h('span', { class: ['badge', 'st-' + String(status || 'unknown').replace(/[^a-z_]/g, '')] }, status || '—');
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return '';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  const fut = s < 0;
  const a = Math.abs(s);
  const txt = a < 60 ? a + 's' : a < 3600 ? Math.round(a / 60) + 'm' : a < 86400 ? Math.round(a / 3600) + 'h' : Math.round(a / 86400) + 'd';
  return fut ? 'in ' + txt : txt + ' ago';
}

export function time(iso) {
  return h('time', { datetime: iso || '', title: iso || '' }, fmtTime(iso));
}

export function duration(from, to) {
  if (!from || !to) return '';
  const ms = new Date(to) - new Date(from);
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  return Math.round(ms / 60000) + ' min';
}

// jsonView renders a value as a tree of <details>, the first levels open.
export function jsonView(value, label, depth = 0) {
  if (value === undefined) return h('span', { class: 'muted' }, 'none');
  if (value === null || typeof value !== 'object') {
    return h('code', { class: 'json-' + (value === null ? 'null' : typeof value) }, JSON.stringify(value));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  const d = h('details', { class: 'json', open: depth < 2 },
    h('summary', null, label !== undefined ? h('span', { class: 'json-key' }, label + ': ') : null, h('span', { class: 'muted' }, summary)));
  const list = h('ul');
  for (const [k, v] of entries) {
    if (v !== null && typeof v === 'object') {
      list.append(h('li', null, jsonView(v, k, depth + 1)));
    } else {
      list.append(h('li', null, h('span', { class: 'json-key' }, k + ': '), jsonView(v)));
    }
  }
  d.append(list);
  return d;
}

export function parseJSON(raw) {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') return raw;
  try { return JSON.parse(raw); } catch { return raw; }
}

// section is a titled panel.
export function section(title, ...children) {
  const id = 'sec-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

export function empty(text) {
  return h('p', { class: 'muted empty' }, text);
}

export function errorBox(err) {
  const details = (err && err.details) || [];
  return h('div', { class: 'error', role: 'alert' },
    h('strong', null, err && err.status ? `${err.status}: ` : ''), (err && err.message) || String(err),
    details.length ? h('ul', null, details.map((d) => h('li', null, (d.line ? `line ${d.line}: ` : '') + (d.path ? d.path + ': ' : '') + d.message))) : null);
}

let announceTimer;
// announce says something to screen readers and shows it in the banner.
export function announce(text, kind = 'info') {
  const b = document.getElementById('banner');
  mount(b, h('div', { class: 'note note-' + kind }, text));
  clearTimeout(announceTimer);
  if (kind !== 'error') announceTimer = setTimeout(() => clear(b), 6000);
}

// debounce coalesces calls: fn runs ms after the first call of a burst,
// with the last call's arguments. Unlike a plain debounce it also runs
// while calls keep coming (a busy event stream), once every ms.
export function debounce(fn, ms) {
  let t = null;
  let last;
  const d = (...a) => {
    last = a;
    if (t !== null) return;
    t = setTimeout(() => { t = null; fn(...last); }, ms);
  };
  d.cancel = () => { clearTimeout(t); t = null; };
  return d;
}
