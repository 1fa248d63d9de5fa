// The browser suite's harness: builds waymark, runs `waymark serve` on a
// fresh SQLite file, launches Debian's chromium through playwright-core,
// and collects console errors and screenshots.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const outDir = join(here, 'test-output');

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    srv.on('error', reject);
  });
}

// startServer builds the binary (once) and serves on a fresh database.
let built;
export async function startServer(args = ['--insecure-dev']) {
  const dir = mkdtempSync(join(tmpdir(), 'waymark-e2e-'));
  const bin = process.env.WAYMARK_BIN || join(dir, 'waymark');
  if (!process.env.WAYMARK_BIN && !built) {
    execFileSync('go', ['build', '-o', bin, './cmd/waymark'], { cwd: repo, stdio: 'inherit' });
    built = bin;
  }
  const exe = process.env.WAYMARK_BIN || built;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(exe, ['serve', '--db', 'sqlite://' + join(dir, 'waymark.db'), '--addr', `127.0.0.1:${port}`, '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (b) => { log += b; });
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url + '/readyz')).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url, port, dir, proc, log: () => log,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// call calls the API as the anonymous admin of insecure-dev mode (or with
// the headers given).
export async function call(server, method, path, body, headers = {}) {
  const h = { Accept: 'application/json', ...headers };
  let b;
  if (typeof body === 'string') { b = body; h['Content-Type'] = 'application/yaml'; } else if (body !== undefined) { b = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
  const resp = await fetch(server.url + '/api/v1' + path, { method, headers: h, body: b });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return { data, etag: resp.headers.get('ETag') };
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

// newPage opens a page that records console errors and failed requests
// into errors.
export async function newPage(browser, errors, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${page.url()})`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message} (${page.url()})`));
  // Which request a "Failed to load resource" line was about.
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`answer: ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}${new URL(r.url()).search} (${page.url()})`); });
  return page;
}

// actAs signs in, in insecure-dev mode, as user with roles (empty: the
// anonymous admin).
export async function actAs(page, server, user, roles = []) {
  await page.goto(server.url + '/ui/#/signin');
  await page.getByLabel('User', { exact: true }).fill(user);
  await page.getByLabel('Roles (comma-separated)').fill(roles.join(', '));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#who').getByText(user || 'anonymous').waitFor();
}

export async function shot(page, name) {
  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, name + '.png'), fullPage: true });
}

export async function axe(page) {
  // Evaluated through the DevTools protocol: the page's CSP forbids
  // injected script tags, rightly.
  await page.evaluate(readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'));
  const res = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}
