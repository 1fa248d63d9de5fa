// A line diff (longest common subsequence) of two sources, drawn as a
// table.
import { h } from './dom.js';

export function diffLines(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length;
  // Sources are small (definitions); an O(n·m) table is fine up to a few
  // thousand lines.
  const dp = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ op: ' ', a: i + 1, b: j + 1, text: x[i] }); i++; j++; }
    else if (dp[i + 1][j] >= dp[i][j + 1]) { out.push({ op: '-', a: i + 1, text: x[i] }); i++; }
    else { out.push({ op: '+', b: j + 1, text: y[j] }); j++; }
  }
  while (i < n) { out.push({ op: '-', a: i + 1, text: x[i] }); i++; }
  while (j < m) { out.push({ op: '+', b: j + 1, text: y[j] }); j++; }
  return out;
}

export function diffTable(a, b, labelA, labelB) {
  const rows = diffLines(a, b);
  const changed = rows.filter((r) => r.op !== ' ').length;
  return h('div', null,
    h('p', { class: 'muted' }, changed ? `${changed} changed lines between ${labelA} and ${labelB}` : `${labelA} and ${labelB} are the same`),
    h('div', { class: 'diff-wrap', tabindex: 0, role: 'region', 'aria-label': 'Differences' }, h('table', { class: 'diff' },
      h('caption', { class: 'sr-only' }, `Differences between ${labelA} and ${labelB}`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, labelA), h('th', { scope: 'col' }, labelB), h('th', { scope: 'col' }, ''), h('th', { scope: 'col' }, 'line'))),
      h('tbody', null, rows.map((r) => h('tr', { class: r.op === '+' ? 'add' : r.op === '-' ? 'del' : '' },
        h('td', { class: 'ln' }, r.a || ''), h('td', { class: 'ln' }, r.b || ''),
        h('td', { class: 'op', 'aria-label': r.op === '+' ? 'added' : r.op === '-' ? 'removed' : 'same' }, r.op),
        h('td', null, h('code', null, r.text))))))));
}
