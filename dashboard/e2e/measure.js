// Measures page load times of the instances list and the inspector on a
// large database: the server's time for the API call (from its request
// log), the browser's time for it, and the time from navigation to the
// first render of the page's data.
//
//	go run ./dashboard/e2e/seed -db /tmp/big.db -n 100000
//	cd dashboard/e2e && node measure.js /tmp/big.db
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, freePort, launch } from './harness.js';

const db = process.argv[2];
if (!db) { console.error('usage: node measure.js DB [runs]'); process.exit(2); }
const runs = Number(process.argv[3] || 5);
const bin = join(mkdtempSync(join(tmpdir(), 'waymark-measure-')), 'waymark');
execFileSync('go', ['build', '-o', bin, './cmd/waymark'], { cwd: repo, stdio: 'inherit' });
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const proc = spawn(bin, ['serve', '--insecure-dev', '--db', 'sqlite://' + db, '--addr', `127.0.0.1:${port}`, '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
const log = [];
let buf = '';
proc.stderr.on('data', (b) => {
  buf += b;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    try { log.push(JSON.parse(line)); } catch { /* not JSON */ }
  }
});
for (let i = 0; i < 200; i++) {
  try { if ((await fetch(url + '/readyz')).ok) break; } catch { /* starting */ }
  await new Promise((r) => setTimeout(r, 100));
}
const stats = await (await fetch(url + '/api/v1/stats/instances')).json();
const total = stats.byStatus.reduce((a, r) => a + r.count, 0);
const newest = (await (await fetch(url + '/api/v1/instances?limit=1')).json()).items[0];
const oldest = (await (await fetch(url + '/api/v1/instances?businessKey=bk-0')).json()).items[0];

// serverMs is the server's time for the page's main call (path), and for
// all the API calls the page made since log entry from (the event stream
// and its token aside).
const serverMs = (path, from) => {
  const hits = log.slice(from).filter((l) => l.msg === 'server: request' && l.path.startsWith('/api/v1/') && !l.path.startsWith('/api/v1/events') && l.path !== '/api/v1/openapi.json');
  const main = hits.filter((l) => l.path === path);
  return [main.length ? main[main.length - 1].duration_ms : NaN, hits.reduce((a, l) => a + l.duration_ms, 0), hits.length];
};

const browser = await launch();
const cases = [
  ['instances list, no filter', '/instances', '/api/v1/instances'],
  ['instances list, status=failed', '/instances?status=failed', '/api/v1/instances'],
  ['instances list, definition+status', '/instances?definition=bulk-review&status=waiting', '/api/v1/instances'],
  ['instances list, business key', '/instances?businessKey=bk-4242', '/api/v1/instances'],
  ['instances list, page 2', null, '/api/v1/instances'],
  ['inspector, newest instance', `/instances/${newest.id}`, `/api/v1/instances/${newest.id}`],
  ['inspector, oldest instance', `/instances/${oldest.id}`, `/api/v1/instances/${oldest.id}`],
];
const page2 = (await (await fetch(url + '/api/v1/instances?limit=50')).json()).nextCursor;
cases[4][1] = '/instances?cursor=' + encodeURIComponent(page2);

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
console.log(`database: ${db}, ${total} instances; ${runs} loads each, median (chromium headless, SQLite, this machine)`);
console.log('| page | server: main call | server: all the page\'s calls | browser fetch (main call) | navigation → first render |');
console.log('|---|---|---|---|---|');
for (const [name, frag, apiPath] of cases) {
  const srv = [], all = [], fetchMs = [], ttfr = [];
  let calls = 0;
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const from = log.length;
    await page.goto(url + '/ui/#' + frag);
    const el = frag.startsWith('/instances/') ? '#inspector-timing' : '#list-timing';
    await page.waitForFunction(() => performance.getEntriesByName('waymark:rendered').length > 0, null, { timeout: 30000 });
    const [mark, fms] = await page.evaluate((sel) => [performance.getEntriesByName('waymark:rendered')[0].startTime, Number(document.querySelector(sel).dataset.serverMs)], el);
    ttfr.push(mark); fetchMs.push(fms);
    await new Promise((r) => setTimeout(r, 50));
    const [m, sum, n] = serverMs(apiPath, from);
    srv.push(m); all.push(sum); calls = n;
    await ctx.close();
  }
  console.log(`| ${name} | ${median(srv).toFixed(1)} ms | ${median(all).toFixed(1)} ms (${calls} calls) | ${median(fetchMs).toFixed(1)} ms | ${median(ttfr).toFixed(0)} ms |`);
}
await browser.close();
proc.kill('SIGTERM');
