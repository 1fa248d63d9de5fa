// The public API (/api/v1) with the signed-in user's credentials, and the
// live event stream.

export const config = JSON.parse(document.getElementById('waymark-config').textContent);
const base = config.api;
const KEY = 'waymark.session';

// session: {token} or, in insecure-dev mode, {user, roles}. Kept in
// sessionStorage: it lasts as long as the tab.
export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch { return {}; }
}

export function setSession(s) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s)); else sessionStorage.removeItem(KEY);
  me = null;
}

export function signedIn() {
  const s = session();
  return !!s.token || (config.insecureDev && s.dev === true);
}

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.details = e.details || [];
  }
}

function headers(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra);
  const s = session();
  if (s.token) h.Authorization = 'Bearer ' + s.token;
  else if (config.insecureDev && s.user) {
    h['X-Waymark-User'] = s.user;
    h['X-Waymark-Roles'] = (s.roles || []).join(',');
  }
  return h;
}

// api calls the API: api('GET', '/instances', {query}); it answers {data,
// etag, status, ms} or throws an ApiError.
export async function api(method, path, opts = {}) {
  let url = base + path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const qs = q.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const extra = {};
  let body;
  if (opts.raw !== undefined) {
    body = opts.raw;
    extra['Content-Type'] = opts.contentType || 'application/yaml';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    extra['Content-Type'] = 'application/json';
  }
  if (opts.ifMatch) extra['If-Match'] = opts.ifMatch;
  const t0 = performance.now();
  const resp = await fetch(url, { method, headers: headers(extra), body });
  const text = await resp.text();
  let data;
  try { data = text ? JSON.parse(text) : undefined; } catch { data = text; }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401 && !opts.noRedirect) window.dispatchEvent(new CustomEvent('waymark:unauthorized'));
    throw err;
  }
  return { data, etag: resp.headers.get('ETag'), status: resp.status, ms: performance.now() - t0 };
}

export const get = (path, query) => api('GET', path, { query }).then((r) => r.data);

let me = null;
// whoami answers the caller: {user, roles, may: [read, operate, admin, work]}.
export async function whoami() {
  if (!me) me = (await api('GET', '/me', { noRedirect: true })).data;
  return me;
}

export const may = (what) => !!me && me.may.includes(what);
export const currentUser = () => me;

// Event types the engine writes, to listen for on the stream (SSE named
// events). Anything else is caught by the prefixes' refresh on reconnect.
const TYPES = ['instance.started', 'instance.completed', 'instance.failed', 'instance.cancelled', 'instance.timed_out',
  'instance.suspended', 'instance.resumed', 'instance.compensating', 'activity.started', 'activity.completed',
  'activity.failed', 'activity.retrying', 'activity.skipped', 'activity.cancelled', 'activity.held', 'task.created',
  'task.claimed', 'task.unclaimed', 'task.completed', 'task.expired', 'message.correlated', 'message.timed_out',
  'timer.fired', 'subworkflow.finished', 'breaker.opened', 'breaker.closed'];

const listeners = new Set();

// live subscribes fn to the committed events that pass filter ({instance,
// definition}). It answers a function that unsubscribes. When the user
// may not read the stream, fn is called every 5 s instead (polling).
export function live(filter, fn) {
  const sub = { filter: filter || {}, fn };
  listeners.add(sub);
  stream.ensure();
  return () => {
    listeners.delete(sub);
    // A refresh still pending belongs to a page that is gone.
    if (fn.cancel) fn.cancel();
    stream.idle();
  };
}

function matches(f, ev) {
  if (f.instance && ev.instanceId !== f.instance) return false;
  if (f.definition && ev.definition !== f.definition) return false;
  return true;
}

const stream = {
  es: null, last: '', poll: null, opening: false, retry: 1000,
  setState(text) { const el = document.getElementById('live-state'); if (el) el.textContent = text; },
  deliver(ev) { for (const l of listeners) if (matches(l.filter, ev)) l.fn(ev); },
  async ensure() {
    if (this.es || this.opening || this.poll || !listeners.size) return;
    this.opening = true;
    try {
      if (me && !me.may.includes('read')) throw Object.assign(new Error('no reading role'), { status: 403 });
      const tok = (await api('POST', '/events/token', { noRedirect: true })).data;
      const q = new URLSearchParams({ token: tok.token });
      if (this.last) q.set('after', this.last);
      const es = new EventSource(base + '/events?' + q);
      this.es = es;
      const on = (m) => {
        if (m.lastEventId) this.last = m.lastEventId;
        let ev;
        try { ev = JSON.parse(m.data); } catch { return; }
        this.deliver(ev);
      };
      for (const t of TYPES) es.addEventListener(t, on);
      es.onmessage = on;
      es.onopen = () => { this.retry = 1000; this.setState('live'); };
      es.onerror = () => {
        if (es.readyState === EventSource.CLOSED) {
          // The token expired or the server went away: a new token, and
          // resume after the last event seen.
          this.es = null;
          this.setState('reconnecting…');
          setTimeout(() => this.ensure(), this.retry);
          this.retry = Math.min(this.retry * 2, 15000);
        } else {
          this.setState('reconnecting…');
        }
      };
    } catch (err) {
      if (err.status === 403) {
        // No reading role (a task-inbox user): poll instead.
        this.setState('updates every 5 s');
        this.poll = setInterval(() => { for (const l of listeners) l.fn(null); }, 5000);
      } else {
        setTimeout(() => this.ensure(), this.retry);
        this.retry = Math.min(this.retry * 2, 15000);
      }
    } finally {
      this.opening = false;
    }
  },
  idle() {
    if (listeners.size) return;
    // Keep the stream a moment: the next page subscribes at once.
    setTimeout(() => {
      if (listeners.size) return;
      if (this.es) { this.es.close(); this.es = null; }
      if (this.poll) { clearInterval(this.poll); this.poll = null; }
      this.setState('');
    }, 2000);
  },
  // reset ends the stream of the previous user; the next page's
  // subscription opens one for the new user.
  reset() {
    if (this.es) { this.es.close(); this.es = null; }
    if (this.poll) { clearInterval(this.poll); this.poll = null; }
    this.last = '';
    this.setState('');
  },
};

export function resetLive() { stream.reset(); }
