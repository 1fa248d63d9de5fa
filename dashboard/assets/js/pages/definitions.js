// Definitions: the list, one definition's versions with graph, source and
// diff, starting an instance, and deploying with problems at their lines.
import { h, mount, time, section, empty, errorBox, announce } from '../dom.js';
import { api, get, may } from '../api.js';
import { graphOf, drawMap } from '../graph.js';
import { diffTable } from '../diff.js';

export async function definitions(main) {
  document.title = 'Definitions · Waymark';
  const page = await get('/definitions');
  mount(main,
    h('div', { class: 'title-row' }, h('h1', null, 'Definitions'), may('admin') ? h('a', { href: '#/deploy', class: 'btn primary' }, 'Deploy…') : null),
    page.items.length ? h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Table' }, h('table', { class: 'grid' },
      h('caption', { class: 'sr-only' }, 'Deployed definitions, latest versions'),
      h('thead', null, h('tr', null, ['Definition', 'Name', 'Latest version', 'Deployed', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, page.items.map((d) => h('tr', null,
        h('td', null, h('a', { href: '#/definitions/' + encodeURIComponent(d.id) }, d.id)),
        h('td', null, d.name || ''), h('td', { class: 'num' }, 'v' + d.version), h('td', null, time(d.deployedAt)),
        h('td', null, h('a', { href: '#/instances?definition=' + encodeURIComponent(d.id) }, 'instances'))))))) : empty('Nothing deployed yet.'));
}

export async function definitionPage(main, { parts, query, go }) {
  const id = parts[1];
  document.title = id + ' · Waymark';
  const versions = (await get(`/definitions/${encodeURIComponent(id)}/versions`)).items;
  const latest = versions[versions.length - 1].version;
  const v = Number(query.get('v')) || latest;
  const cmp = Number(query.get('diff')) || 0;
  const cur = await get(`/definitions/${encodeURIComponent(id)}/versions/${v}`);
  const graph = await graphOf(id, v);
  const vlink = (ver, extra = '') => `#/definitions/${encodeURIComponent(id)}?v=${ver}${extra}`;

  const compare = h('select', { id: 'diff-with' }, h('option', { value: '' }, 'choose a version'),
    versions.filter((x) => x.version !== v).map((x) => h('option', { value: x.version, selected: x.version === cmp }, 'v' + x.version)));
  compare.addEventListener('change', () => go(`/definitions/${encodeURIComponent(id)}?v=${v}${compare.value ? '&diff=' + compare.value : ''}`));
  let diff = null;
  if (cmp) {
    const other = await get(`/definitions/${encodeURIComponent(id)}/versions/${cmp}`);
    const [a, b] = cmp < v ? [other, cur] : [cur, other];
    diff = diffTable(a.source, b.source, 'v' + a.version, 'v' + b.version);
  }
  mount(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/definitions' }, 'Definitions'), ' / ', id),
    h('div', { class: 'title-row' }, h('h1', null, `${cur.name || id} v${v}`),
      h('a', { href: `#/instances?definition=${encodeURIComponent(id)}&version=${v}`, class: 'btn' }, 'Its instances')),
    h('nav', { class: 'versions', 'aria-label': 'Versions' }, h('ul', null, versions.map((x) => h('li', null,
      h('a', { href: vlink(x.version), 'aria-current': x.version === v ? 'page' : false }, 'v' + x.version), ' ', h('span', { class: 'muted small' }, time(x.deployedAt)))))),
    may('operate') ? startForm(id, v, go) : null,
    section('Graph', drawMap(graph, null, { title: `Graph of ${id} v${v}` })),
    section('Source', sourceView(cur.source, [])),
    section('Compare', h('div', { class: 'field' }, h('label', { for: 'diff-with' }, `Compare v${v} with`), compare), diff));
}

function startForm(id, version, go) {
  const input = h('textarea', { id: 'start-input', rows: 3, class: 'mono' }, '{}');
  const key = h('input', { id: 'start-key' });
  const err = h('div');
  const form = h('form', { class: 'panel start', 'aria-labelledby': 'start-h' },
    h('h2', { id: 'start-h' }, 'Start an instance'),
    h('div', { class: 'row' },
      h('div', { class: 'field grow' }, h('label', { for: 'start-input' }, 'Input (JSON)'), input),
      h('div', { class: 'field' }, h('label', { for: 'start-key' }, 'Business key'), key)),
    err, h('button', { type: 'submit', class: 'btn primary' }, `Start v${version}`));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    mount(err);
    let body;
    try { body = { definition: id, version, input: JSON.parse(input.value || 'null'), businessKey: key.value.trim() || undefined }; } catch (e) { mount(err, errorBox({ message: 'Input: ' + e.message })); return; }
    try {
      const res = await api('POST', '/instances', { body });
      announce('Started ' + res.data.id, 'ok');
      go('/instances/' + encodeURIComponent(res.data.id));
    } catch (e) { mount(err, errorBox(e)); }
  });
  return form;
}

// sourceView shows a source with line numbers, marking the lines of
// problems ({line, path, message}).
function sourceView(src, problems) {
  const byLine = new Map();
  for (const p of problems) if (p.line) byLine.set(p.line, [...(byLine.get(p.line) || []), p]);
  return h('ol', { class: 'source', tabindex: 0, 'aria-label': 'Source lines' }, src.split('\n').map((line, i) => {
    const ps = byLine.get(i + 1);
    return h('li', { class: ps ? 'has-problem' : '', id: ps ? 'problem-line-' + (i + 1) : null },
      h('code', null, line || ' '),
      ps ? ps.map((p) => h('div', { class: 'problem', role: 'note' }, `line ${p.line}: ${p.path ? p.path + ': ' : ''}${p.message}`)) : null);
  }));
}

export async function deployPage(main, { go }) {
  document.title = 'Deploy · Waymark';
  const ta = h('textarea', { id: 'deploy-source', rows: 18, class: 'mono', spellcheck: 'false', placeholder: 'id: my-process\nactivities:\n  - …' });
  const file = h('input', { id: 'deploy-file', type: 'file', accept: '.yaml,.yml,.json,text/yaml,application/json' });
  file.addEventListener('change', async () => { if (file.files[0]) ta.value = await file.files[0].text(); });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', 'aria-labelledby': 'deploy-h' },
    h('h1', { id: 'deploy-h' }, 'Deploy a definition'),
    h('p', null, 'Paste a definition (YAML or JSON) or upload a file. Problems are shown at their lines; nothing is deployed until there are none.'),
    h('div', { class: 'field' }, h('label', { for: 'deploy-file' }, 'Upload a file'), file),
    h('div', { class: 'field' }, h('label', { for: 'deploy-source' }, 'Source'), ta),
    h('button', { type: 'submit', class: 'btn primary' }, 'Deploy'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const src = ta.value;
    const json = /^\s*[{[]/.test(src);
    try {
      const res = await api('POST', '/definitions', { raw: src, contentType: json ? 'application/json' : 'application/yaml' });
      const d = res.data;
      announce(d.created ? `Deployed ${d.id} v${d.version}` : `${d.id} v${d.version} has this content already`, 'ok');
      go(`/definitions/${encodeURIComponent(d.id)}?v=${d.version}`);
    } catch (err) {
      if (err.status === 422) {
        mount(result, h('div', { class: 'error', role: 'alert' }, h('strong', null, err.message), h('ul', null, err.details.map((p) =>
          h('li', null, p.line ? h('a', { href: '#problem-line-' + p.line, onclick: (e) => { e.preventDefault(); document.getElementById('problem-line-' + p.line).scrollIntoView(); } }, `line ${p.line}`) : 'document', ': ', p.path ? h('code', null, p.path) : null, ' ', p.message)))),
        section('Problems in the source', sourceView(src, err.details)));
      } else {
        mount(result, errorBox(err));
      }
    }
  });
  mount(main, form, result);
}
