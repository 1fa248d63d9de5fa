// The process map: a definition's graph laid out by dagre (computed once
// per definition version) and drawn as SVG, with each activity's state.
import dagre from '../vendor/dagre.esm.js';
import { s, h } from './dom.js';
import { get } from './api.js';

const layouts = new Map();

// graphOf fetches and lays out a definition version's graph.
export async function graphOf(id, version) {
  const key = id + '@' + version;
  if (!layouts.has(key)) {
    layouts.set(key, get(`/definitions/${encodeURIComponent(id)}/versions/${version}/graph`).then(layout).catch((e) => {
      layouts.delete(key);
      throw e;
    }));
  }
  return layouts.get(key);
}

const ICON = {
  task: '⚙', http: '⇄', userTask: '✎', receive: '✉', timer: '◷', switch: '◇', parallel: '⋔', join: '⋈',
  set: '≔', emit: '➚', subworkflow: '⊞', fail: '✖', end: '■', forEach: '↻', firstOf: '⚑', scope: '▣',
};

// A scope is drawn as a box (a dagre cluster) around its own activities,
// with its node, where its transitions and boundary events attach, inside
// it at the top.
const clusterOf = (id) => 'scope:' + id;

function layout(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true, compound: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 56, edgesep: 12, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const label = n.name || n.id;
    const width = Math.max(110, Math.min(240, 26 + Math.max(label.length, (n.type || '').length + 2) * 7.2));
    g.setNode(n.id, { width, height: 52, node: n, label });
    if (n.type === 'scope') g.setNode(clusterOf(n.id), { cluster: n, label, paddingTop: 24 });
  }
  for (const n of graph.nodes) {
    if (n.type === 'scope') g.setParent(n.id, clusterOf(n.id));
    if (n.parent) g.setParent(n.type === 'scope' ? clusterOf(n.id) : n.id, clusterOf(n.parent));
  }
  graph.edges.forEach((e, i) => {
    const label = e.label ? (e.label.length > 28 ? e.label.slice(0, 27) + '…' : e.label) : (e.kind === 'next' || e.kind === 'branch' || e.kind === 'body' || e.kind === 'scope' ? '' : e.kind);
    g.setEdge(e.from, e.to, { edge: e, label, width: label ? label.length * 6.2 : 0, height: label ? 14 : 0, labelpos: 'c' }, 'e' + i);
  });
  dagre.layout(g);
  return { graph, g };
}

// states turns an instance's executions into per-activity states:
// {state, count, execs}. A compensation handler that ran marks what it
// undid as compensated.
export function activityStates(inst, graph) {
  const out = new Map();
  for (const x of inst.activities || []) {
    let a = out.get(x.activityId);
    if (!a) out.set(x.activityId, a = { execs: [], state: '', count: 0 });
    a.execs.push(x);
    a.count++;
  }
  for (const a of out.values()) {
    const last = a.execs[a.execs.length - 1];
    // A scheduled execution with an error is failing: waiting for its
    // retry, or for an operator when the instance is suspended.
    a.state = last.status === 'scheduled' && last.error ? 'failed' : mapState(last.status);
  }
  for (const e of graph.edges) {
    if (e.kind === 'compensate' && out.has(e.to) && out.get(e.to).execs.some((x) => x.status === 'completed')) {
      const from = out.get(e.from);
      if (from) from.state = 'compensated';
    }
  }
  return out;
}

function mapState(st) {
  switch (st) {
    case 'scheduled': return 'running';
    case 'waiting': return 'waiting';
    case 'completed': return 'completed';
    case 'failed': return 'failed';
    case 'skipped': return 'skipped';
    case 'cancelled': return 'cancelled';
    case 'expired': return 'expired';
  }
  return st || '';
}

// drawMap draws the laid out graph. states maps activity ids to their
// state; onSelect is called with an activity id on click or Enter.
export function drawMap({ graph, g }, states, { selected, onSelect, title } = {}) {
  const gr = g.graph();
  const w = Math.ceil(gr.width || 200), ht = Math.ceil(gr.height || 100);
  const svg = s('svg', { class: 'map', viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: 'group', 'aria-label': title || 'Process map' });
  const defs = s('defs', null,
    s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' })));
  svg.append(defs);
  // Scope boxes first, outermost first, so that nested ones and the nodes
  // are drawn over them.
  const depth = (id) => { let d = 0; for (let p = g.parent(id); p; p = g.parent(p)) d++; return d; };
  const clusters = g.nodes().filter((id) => g.node(id).cluster).sort((a, b) => depth(a) - depth(b));
  for (const id of clusters) {
    const c = g.node(id);
    const st = states ? states.get(c.cluster.id) : null;
    svg.append(s('g', { class: ['scope-box', st ? 'state-' + st.state : 'state-none'], 'data-scope': c.cluster.id, 'aria-hidden': 'true' },
      s('rect', { x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height, rx: 10 }),
      s('text', { x: c.x - c.width / 2 + 10, y: c.y - c.height / 2 + 16, class: 'scope-label' }, 'scope ' + c.label)));
  }
  const taken = (e) => states && states.has(e.from) && states.has(e.to) && e.kind !== 'compensate';
  for (const ref of g.edges()) {
    const ed = g.edge(ref);
    const e = ed.edge;
    const pts = ed.points || [];
    const d = pts.map((p, i) => (i ? 'L' : 'M') + p.x.toFixed(1) + ',' + p.y.toFixed(1)).join(' ');
    const cls = ['edge', 'edge-' + e.kind, taken(e) ? 'taken' : ''];
    svg.append(s('path', { d, class: cls, 'marker-end': 'url(#arrow)' }));
    if (ed.label) {
      svg.append(s('text', { x: ed.x, y: ed.y + 4, class: 'edge-label', 'text-anchor': 'middle' }, ed.label));
    }
  }
  for (const id of g.nodes()) {
    const n = g.node(id);
    if (n.cluster) continue;
    const node = n.node;
    const st = states ? states.get(id) : null;
    const state = st ? st.state : '';
    const x = n.x - n.width / 2, y = n.y - n.height / 2;
    // The accessible name is the visible text: label, type and state.
    const grp = s('g', {
      class: ['node', 'type-' + node.type, state ? 'state-' + state : 'state-none', selected === id ? 'selected' : '', node.id === graph.start ? 'start' : ''],
      transform: `translate(${x},${y})`, tabindex: 0, role: 'button', 'data-activity': id,
      'aria-pressed': selected === id ? 'true' : 'false',
    },
    s('title', null, `${n.label}: ${node.type}${node.detail ? ` (${node.detail})` : ''}${state ? '' : ', not reached'}`),
    s('rect', { width: n.width, height: n.height, rx: node.type === 'end' || node.type === 'fail' ? 26 : 8 }),
    s('text', { x: 10, y: 20, class: 'node-icon', 'aria-hidden': 'true' }, ICON[node.type] || ''),
    s('text', { x: 26, y: 20, class: 'node-label' }, n.label),
    s('text', { x: 10, y: 38, class: 'node-type' }, node.type + (state ? ' · ' + state : '')));
    if (st && st.count > 1) {
      grp.append(s('g', { class: 'count', transform: `translate(${n.width - 14},0)` },
        s('circle', { r: 11 }), s('text', { 'text-anchor': 'middle', y: 4 }, '×' + st.count)));
    }
    if (onSelect) {
      grp.addEventListener('click', () => onSelect(id));
      grp.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(id); }
      });
    }
    svg.append(grp);
  }
  return h('div', { class: 'map-wrap', tabindex: 0, role: 'region', 'aria-label': (title || 'Process map') + ' (scrolls)' }, svg);
}

export function legend() {
  const items = ['completed', 'running', 'waiting', 'failed', 'compensated', 'skipped', 'cancelled'];
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    items.map((i) => h('li', null, h('span', { class: 'swatch state-' + i, 'aria-hidden': 'true' }), i)),
    h('li', null, h('span', { class: 'swatch taken-swatch', 'aria-hidden': 'true' }), 'path taken'));
}
