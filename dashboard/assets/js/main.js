// The dashboard's shell: sign-in, navigation and the router. Pages live in
// pages/*.js; each renders into <main> and answers a cleanup function.
import { h, mount, errorBox, announce } from './dom.js';
import { config, session, setSession, signedIn, whoami, may, resetLive } from './api.js';
import { overview } from './pages/overview.js';
import { instances } from './pages/instances.js';
import { inspector } from './pages/inspector.js';
import { definitions, definitionPage, deployPage } from './pages/definitions.js';
import { tasks } from './pages/tasks.js';
import { deadLetters, breakers } from './pages/operations.js';

const main = document.getElementById('main');
let cleanup = null;

// route parses the fragment: #/instances/ID?x=y -> {parts, query}.
export function route() {
  const frag = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = frag.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs || '') };
}

// go navigates to a fragment (pages build their links with it).
export function go(frag, replace) {
  if (replace) history.replaceState(null, '', '#' + frag);
  else location.hash = frag;
  if (replace) render();
}

const NAV = [
  { href: '#/', label: 'Overview', need: 'read', match: (p) => p.length === 0 },
  { href: '#/instances', label: 'Instances', need: 'read', match: (p) => p[0] === 'instances' },
  { href: '#/definitions', label: 'Definitions', need: 'read', match: (p) => p[0] === 'definitions' || p[0] === 'deploy' },
  { href: '#/tasks', label: 'Tasks', need: '', match: (p) => p[0] === 'tasks' },
  { href: '#/dead-letters', label: 'Dead letters', need: 'read', match: (p) => p[0] === 'dead-letters' },
  { href: '#/breakers', label: 'Breakers', need: 'read', match: (p) => p[0] === 'breakers' },
];

function drawNav(parts) {
  const nav = document.getElementById('nav');
  const items = NAV.filter((n) => !n.need || may(n.need));
  mount(nav, h('ul', null, items.map((n) => h('li', null,
    h('a', { href: n.href, 'aria-current': n.match(parts) ? 'page' : false }, n.label)))));
}

function drawWho() {
  const who = document.getElementById('who');
  const me = window.__me;
  if (!me) { mount(who); return; }
  const roles = me.roles.length ? me.roles.join(', ') : 'no roles';
  mount(who,
    h('span', { class: 'who-name', title: roles }, me.user, h('span', { class: 'muted' }, ' (' + roles + ')')),
    config.insecureDev ? h('a', { href: '#/signin', class: 'btn small' }, 'Switch user') : null,
    h('button', { type: 'button', class: 'btn small', onclick: signOut }, 'Sign out'));
}

function signOut() {
  setSession(null);
  window.__me = null;
  location.hash = '#/signin';
  resetLive();
}

function signInPage() {
  const s = session();
  const tokenId = 'signin-token';
  const tokenForm = h('form', { class: 'panel signin', 'aria-labelledby': 'signin-h' },
    h('h1', { id: 'signin-h' }, 'Sign in'),
    h('p', null, 'Paste an API key or a JWT. It is kept in this tab\'s session storage only, and sent with every API request.'),
    h('div', { class: 'field' }, h('label', { for: tokenId }, 'API key or JWT'),
      h('input', { id: tokenId, name: 'token', type: 'password', autocomplete: 'off', required: true })),
    h('div', { id: 'signin-error' }),
    h('button', { type: 'submit', class: 'btn primary' }, 'Sign in'));
  tokenForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setSession({ token: tokenForm.token.value.trim() });
    await afterSignIn(tokenForm.querySelector('#signin-error'));
  });
  if (!config.insecureDev) return [tokenForm];
  const presets = [
    ['anonymous admin', '', []], ['ada (admin)', 'ada', ['admin']], ['olga (operator)', 'olga', ['operator']],
    ['vic (viewer)', 'vic', ['viewer']], ['fran (finance)', 'fran', ['finance']],
  ];
  const devForm = h('form', { class: 'panel signin', 'aria-labelledby': 'dev-h' },
    h('h1', { id: 'dev-h' }, 'Act as a user'),
    h('p', null, 'This server runs in insecure-dev mode: it believes the user and roles you name here. Switch to act as several people.'),
    h('div', { class: 'field' }, h('label', { for: 'dev-user' }, 'User'),
      h('input', { id: 'dev-user', name: 'user', value: s.user || '', placeholder: 'empty: anonymous admin', autocomplete: 'username' })),
    h('div', { class: 'field' }, h('label', { for: 'dev-roles' }, 'Roles (comma-separated)'),
      h('input', { id: 'dev-roles', name: 'roles', value: (s.roles || []).join(', '), placeholder: 'admin, operator, viewer, finance…' })),
    h('div', { class: 'presets', role: 'group', 'aria-label': 'Presets' }, presets.map(([label, user, roles]) =>
      h('button', { type: 'button', class: 'btn small', onclick: () => { devForm.user.value = user; devForm.roles.value = roles.join(', '); } }, label))),
    h('div', { id: 'dev-error' }),
    h('button', { type: 'submit', class: 'btn primary' }, 'Continue'));
  devForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const roles = devForm.roles.value.split(',').map((r) => r.trim()).filter(Boolean);
    setSession({ dev: true, user: devForm.user.value.trim(), roles });
    await afterSignIn(devForm.querySelector('#dev-error'));
  });
  return [devForm, h('details', { class: 'panel' }, h('summary', null, 'Sign in with a token instead'), tokenForm)];
}

async function afterSignIn(errEl) {
  try {
    window.__me = await whoami();
    resetLive();
    announce('Signed in as ' + window.__me.user);
    location.hash = may('read') ? '#/' : '#/tasks';
  } catch (err) {
    setSession(null);
    mount(errEl, errorBox(err.status === 401 ? { message: 'That token is not accepted: ' + err.message } : err));
  }
}

let generation = 0;

async function render() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch { /* a page's own cleanup */ } cleanup = null; }
  const { parts, query } = route();
  if (parts[0] === 'signin' || !signedIn()) {
    if (!config.insecureDev && parts[0] !== 'signin') { location.hash = '#/signin'; return; }
    if (parts[0] !== 'signin' && config.insecureDev) {
      // insecure-dev: the anonymous admin until someone is chosen.
      setSession({ dev: true, user: '', roles: [] });
    } else {
      window.__me = null;
      drawNav([]);
      drawWho();
      document.title = 'Sign in · Waymark';
      mount(main, ...signInPage());
      return;
    }
  }
  try {
    window.__me = await whoami();
  } catch (err) {
    mount(main, errorBox(err));
    return;
  }
  drawNav(parts);
  drawWho();
  if (mine !== generation) return; // another navigation came first
  // Each page draws into its own element: a page still loading when the
  // user moves on writes into a detached one, never over the next page.
  const root = h('div', { class: 'page' });
  mount(main, root);
  const ctx = { query, parts, go, main: root };
  let page;
  switch (parts[0] || '') {
    case '': page = may('read') ? overview : tasks; break;
    case 'instances': page = parts[1] ? inspector : instances; break;
    case 'definitions': page = parts[1] ? definitionPage : definitions; break;
    case 'deploy': page = deployPage; break;
    case 'tasks': page = tasks; break;
    case 'dead-letters': page = deadLetters; break;
    case 'breakers': page = breakers; break;
    default: mount(main, h('h1', null, 'Not found'), h('p', null, 'No page at ', h('code', null, location.hash))); return;
  }
  try {
    const done = await page(root, ctx);
    if (mine !== generation) { if (done) done(); return; }
    cleanup = done;
  } catch (err) {
    if (mine === generation) mount(root, errorBox(err));
  }
}

window.addEventListener('hashchange', () => { render(); main.focus({ preventScroll: true }); });
window.addEventListener('waymark:unauthorized', () => {
  if (!config.insecureDev) { setSession(null); location.hash = '#/signin'; }
});
document.querySelector('.menu-toggle').addEventListener('click', (ev) => {
  const open = ev.currentTarget.getAttribute('aria-expanded') !== 'true';
  ev.currentTarget.setAttribute('aria-expanded', String(open));
  document.getElementById('nav').classList.toggle('open', open);
});
document.getElementById('nav').addEventListener('click', (ev) => {
  if (ev.target.closest('a')) {
    document.getElementById('nav').classList.remove('open');
    document.querySelector('.menu-toggle').setAttribute('aria-expanded', 'false');
  }
});
render();
