// The dashboard in a real browser against a real `waymark serve` on SQLite.
// Run: cd dashboard/e2e && npm ci && npm test (needs /usr/bin/chromium and Go).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, call, launch, newPage, actAs, shot, axe } from './harness.js';

let server, browser, hook, hookURL;
const errors = [];
let hookFails = true; // the payment service answers 500 until told otherwise
let webhookFails = true; // so does the webhook receiver
const delivered = [];

const reviewYAML = `id: e2e-review
name: Review
activities:
  - id: prepare
    type: set
    vars: {ready: true}
    next: review
  - id: review
    type: userTask
    title: Review the request
    outcomes: [ok]
    next: {ok: wrap_up}
  - id: wrap_up
    type: set
    vars: {done: true}
    next: done
  - {id: done, type: end}
`;

const expenseYAML = `id: e2e-expense
name: Expense
activities:
  - id: approve
    type: userTask
    title: Approve the expense
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    form:
      type: object
      required: [amount, category]
      properties:
        amount: {type: number, title: Amount, minimum: 0}
        category: {type: string, title: Category, enum: [travel, equipment]}
        urgent: {type: boolean, title: Urgent}
    output: decision
    next: {approved: done, rejected: done}
  - {id: done, type: end}
`;

const chargeYAML = () => `id: e2e-charge
name: Charge
defaults:
  suspendAfterFailures: 1
activities:
  - id: charge
    type: http
    request: {method: POST, url: "${hookURL}/charge", body: {amount: 12}}
    retry: {maxAttempts: 1}
    next: done
  - {id: done, type: end}
`;

before(async () => {
  hook = http.createServer((req, res) => {
    req.resume();
    const fails = req.url === '/webhook' ? webhookFails : hookFails;
    if (req.url === '/webhook' && !fails) delivered.push(req.headers['ce-id'] || req.headers['webhook-id'] || 'event');
    res.writeHead(fails ? 500 : 200, { 'Content-Type': 'application/json' });
    res.end(fails ? '{"error":"down"}' : '{"ok":true}');
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  hookURL = `http://127.0.0.1:${hook.address().port}`;
  // A webhook sink for instance.completed events, to a receiver that
  // refuses while webhookFails: one attempt, then the event is dead.
  const cfg = join(mkdtempSync(join(tmpdir(), 'waymark-e2e-cfg-')), 'waymark.yaml');
  writeFileSync(cfg, `outbox:
  minBackoff: 10ms
  maxBackoff: 50ms
  sinks:
    - name: billing
      type: webhook
      url: ${hookURL}/webhook
      secret: e2e-secret-for-signatures-0123456789
      types: [instance.completed]
      maxAttempts: 1
`);
  server = await startServer(['--insecure-dev', '--config', cfg]);
  browser = await launch();
  await call(server, 'POST', '/definitions', reviewYAML);
  await call(server, 'POST', '/definitions', expenseYAML);
  await call(server, 'POST', '/definitions', chargeYAML());
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (hook) hook.close();
});

const waitFor = async (fn, what, ms = 10000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('deploy from the UI: problems at their lines, then the graph', async () => {
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/deploy');
  const bad = 'id: e2e-deployed\nactivities:\n  - id: start\n    type: task\n    handler: h\n    next: nowhere\n';
  await page.getByRole('textbox', { name: 'Source' }).fill(bad);
  await page.getByRole('button', { name: 'Deploy' }).click();
  const problem = page.locator('#problem-line-6 .problem');
  await problem.waitFor();
  assert.match(await problem.innerText(), /line 6: .*nowhere/);
  await shot(page, 'deploy-problems');

  await page.getByRole('textbox', { name: 'Source' }).fill(bad.replace('next: nowhere', 'next: done') + '  - {id: done, type: end}\n');
  await page.getByRole('button', { name: 'Deploy' }).click();
  await page.waitForURL(/#\/definitions\/e2e-deployed\?v=1/);
  await page.locator('svg.map [data-activity="done"]').waitFor();
  assert.equal(await page.locator('svg.map .node').count(), 2);
  await shot(page, 'definition');
  await page.context().close();
});

test('start an instance and watch it move on the map without reloading', async () => {
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/definitions/e2e-review');
  await page.getByRole('button', { name: 'Start v1' }).click();
  await page.waitForURL(/#\/instances\/[0-9a-f-]+$/);
  const review = page.locator('svg.map [data-activity="review"]');
  await review.and(page.locator('.state-waiting')).waitFor();
  assert.match(await page.locator('svg.map [data-activity="prepare"]').getAttribute('class'), /state-completed/);
  await page.evaluate(() => { window.__sameDocument = true; });
  const id = page.url().split('/').pop();

  // Someone completes the task elsewhere: the map follows, live.
  const tasks = (await call(server, 'GET', `/tasks?instance=${id}`)).data.items;
  await call(server, 'POST', `/tasks/${tasks[0].id}/complete`, { outcome: 'ok' });
  await page.locator('svg.map [data-activity="done"].state-completed').waitFor({ timeout: 5000 });
  assert.match(await review.getAttribute('class'), /state-completed/);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
  assert.match(await page.locator('h1 .badge').innerText(), /completed/);
  assert.ok(await page.locator('svg.map path.edge.taken').count() >= 3, 'the path taken is drawn');

  // Keyboard: an activity is reachable with Tab and opens with Enter.
  await review.focus();
  await page.keyboard.press('Enter');
  await page.locator('.exec-detail h3', { hasText: 'review' }).waitFor();
  await page.locator('.exec-detail .exec').first().getByText('completed').waitFor();
  await shot(page, 'inspector');
  await page.context().close();
});

test('complete a task with a form as a user with the role; the button is absent for one without', async () => {
  const inst = (await call(server, 'POST', '/instances', { definition: 'e2e-expense' })).data;
  const page = await newPage(browser, errors);
  await actAs(page, server, 'fran', ['finance']);
  await page.goto(server.url + '/ui/#/tasks?view=claimable');
  const card = page.locator('article.card', { hasText: 'Approve the expense' }).first();
  await card.waitFor();
  await card.getByLabel('Amount').fill('-5');
  await card.getByLabel('Category').selectOption({ label: 'travel' });
  await card.getByRole('button', { name: 'Approved' }).click();
  // The engine refuses it (422) and the message sits at the field.
  await card.locator('.field-error', { hasText: 'must be >= 0' }).waitFor();
  assert.equal(await card.getByLabel('Amount').getAttribute('aria-invalid'), 'true');
  await shot(page, 'tasks-form-error');
  await card.getByLabel('Amount').fill('120');
  await card.getByLabel('Urgent').check();
  await card.getByRole('button', { name: 'Approved' }).click();
  await waitFor(async () => (await call(server, 'GET', `/instances/${inst.id}`)).data.status === 'completed', 'the instance to complete');
  const done = (await call(server, 'GET', `/instances/${inst.id}`)).data;
  assert.deepEqual(done.variables.decision.data, { amount: 120, category: 'travel', urgent: true });
  assert.equal(done.variables.decision.user, 'fran');

  // Another task, seen by a viewer without the role: no outcome buttons.
  await call(server, 'POST', '/instances', { definition: 'e2e-expense' });
  await actAs(page, server, 'vera', ['viewer']);
  await page.goto(server.url + '/ui/#/tasks?view=all');
  const other = page.locator('article.card', { hasText: 'Approve the expense' }).first();
  await other.waitFor();
  assert.equal(await other.getByRole('button', { name: 'Approved' }).count(), 0);
  assert.equal(await other.getByRole('button', { name: 'Claim' }).count(), 0);
  await other.getByText('You may not complete this task.').waitFor();

  // And fran sees it appear in her inbox live, then claims it.
  await actAs(page, server, 'fran', ['finance']);
  await page.goto(server.url + '/ui/#/tasks?view=claimable');
  const before = await page.locator('article.card').count();
  await call(server, 'POST', '/instances', { definition: 'e2e-expense' });
  await waitFor(async () => (await page.locator('article.card').count()) === before + 1, 'the new task to appear live');
  await page.locator('article.card').first().getByRole('button', { name: 'Claim' }).click();
  await page.goto(server.url + '/ui/#/tasks?view=mine');
  await page.locator('article.card').first().getByRole('button', { name: 'Unclaim' }).waitFor();
  await shot(page, 'tasks');
  await page.context().close();
});

test('an overdue task is marked in the inbox and on the attention list', async () => {
  await call(server, 'POST', '/definitions', `id: e2e-due
activities:
  - {id: sign, type: userTask, title: Sign the contract, due: 1s, next: done}
  - {id: done, type: end}
`);
  const inst = (await call(server, 'POST', '/instances', { definition: 'e2e-due' })).data;
  await new Promise((r) => setTimeout(r, 1200));
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/tasks?view=all');
  const card = page.locator('article.card.overdue', { hasText: 'Sign the contract' });
  await card.waitFor();
  await card.locator('.badge', { hasText: 'overdue' }).waitFor();
  await page.goto(server.url + '/ui/#/');
  await page.locator('ul.attention li', { hasText: 'is overdue' }).filter({ has: page.locator(`a[href="#/instances/${inst.id}"]`) }).waitFor();
  await call(server, 'POST', `/instances/${inst.id}/cancel`, { reason: 'test over' });
  await page.context().close();
});

test('a suspended instance is on the attention list, is retried from the inspector, and completes', async () => {
  hookFails = true;
  const inst = (await call(server, 'POST', '/instances', { definition: 'e2e-charge' })).data;
  await waitFor(async () => (await call(server, 'GET', `/instances/${inst.id}`)).data.status === 'suspended', 'the instance to suspend');
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/');
  const row = page.locator('ul.attention li', { hasText: 'suspended' }).filter({ has: page.locator(`a[href="#/instances/${inst.id}"]`) });
  await row.waitFor();
  await shot(page, 'overview');
  await row.locator('a').first().click();
  await page.waitForURL(new RegExp(inst.id));
  assert.match(await page.locator('svg.map [data-activity="charge"]').getAttribute('class'), /state-failed/);
  await page.locator('svg.map [data-activity="charge"]').click();
  await page.locator('.exec-detail .error', { hasText: 'HTTP 500' }).first().waitFor();
  await shot(page, 'inspector-suspended');

  hookFails = false;
  await page.getByRole('button', { name: 'Retry…' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Reason').fill('the payment service is back');
  await dlg.getByRole('button', { name: 'Confirm retry' }).click();
  await page.locator('h1 .badge', { hasText: 'completed' }).waitFor();
  const log = (await call(server, 'GET', `/instances/${inst.id}/log`)).data.items;
  assert.ok(log.some((l) => l.event === 'instance.resumed' || l.event === 'activity.started'), 'the retry is logged');
  await page.context().close();
});

test('a stale action gets the "changed since" message and changes nothing', async () => {
  const inst = (await call(server, 'POST', '/instances?wait=5s', { definition: 'e2e-review' })).data;
  const page = await newPage(browser, errors);
  await page.goto(server.url + `/ui/#/instances/${inst.id}`);
  await page.getByRole('button', { name: 'Suspend' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  // Meanwhile someone else suspends and resumes it.
  const cur = await call(server, 'GET', `/instances/${inst.id}`);
  const s = await call(server, 'POST', `/instances/${inst.id}/suspend`, undefined, { 'If-Match': cur.etag });
  await call(server, 'POST', `/instances/${inst.id}/resume`, undefined, { 'If-Match': s.etag });
  await dlg.getByRole('button', { name: 'Confirm suspend' }).click();
  await page.locator('#banner', { hasText: 'changed since you loaded it' }).waitFor();
  assert.equal((await call(server, 'GET', `/instances/${inst.id}`)).data.status, 'waiting', 'not overwritten');
  await page.context().close();
});

test('dead letters: an undeliverable event is listed, replayed from the page, and delivered', async () => {
  // An instance completes; its instance.completed event cannot be delivered.
  webhookFails = true;
  const inst = (await call(server, 'POST', '/instances?wait=5s', { definition: 'e2e-review' })).data;
  const task = (await call(server, 'GET', `/tasks?instance=${inst.id}`)).data.items[0];
  await call(server, 'POST', `/tasks/${task.id}/complete`, { outcome: 'ok' });
  await waitFor(async () => (await call(server, 'GET', `/outbox?status=dead&instance=${inst.id}`)).data.items.length === 1, 'the event to be dead', 20000);

  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/');
  await page.locator('ul.attention li', { hasText: 'could not be delivered' }).filter({ has: page.locator(`a[href="#/instances/${inst.id}"]`) }).first().waitFor();
  await page.goto(server.url + '/ui/#/dead-letters');
  const card = page.locator('article.card', { hasText: inst.id.slice(-12) });
  await card.waitFor();
  await card.locator('.error', { hasText: '500' }).first().waitFor();
  await shot(page, 'dead-letters');
  webhookFails = false;
  await card.getByRole('button', { name: 'Replay' }).click();
  await page.locator('#banner', { hasText: 'Replayed 1 of 1 event' }).waitFor();
  await waitFor(async () => (await call(server, 'GET', `/outbox?status=dead&instance=${inst.id}`)).data.items.length === 0, 'the replayed event to leave the dead letters', 20000);
  await waitFor(() => delivered.length > 0, 'the webhook to receive the event', 20000);
  await page.goto(server.url + '/ui/#/breakers');
  await page.getByRole('heading', { name: 'Circuit breakers' }).waitFor();
  await shot(page, 'breakers');
  await page.context().close();
});

test('every page: no serious accessibility violations, readable on a phone', async () => {
  const inst = (await call(server, 'GET', '/instances?limit=1')).data.items[0];
  const pages = ['/', '/instances', `/instances/${inst.id}`, '/definitions', '/definitions/e2e-expense', '/deploy', '/tasks?view=all', '/dead-letters', '/breakers', '/signin'];
  for (const [vp, tag] of [[{ width: 1280, height: 800 }, 'desktop'], [{ width: 390, height: 844 }, 'phone']]) {
    const page = await newPage(browser, errors, vp);
    for (const frag of pages) {
      await page.goto(server.url + '/ui/#' + frag);
      await page.locator('main h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      const bad = await axe(page);
      assert.deepEqual(bad, [], `${frag} (${tag})`);
      if (tag === 'phone') {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${frag} scrolls sideways on a phone by ${overflow}px`);
      }
      const name = frag.startsWith('/instances/') ? 'inspector' : frag.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'overview';
      await shot(page, `${tag}-${name}`);
    }
    await page.context().close();
  }
});

test('a scope is drawn as a box around its activities, with its state', async () => {
  await call(server, 'POST', '/definitions', `id: e2e-scope
activities:
  - id: booking
    type: scope
    next: done
    boundary: [{after: 24h, next: late}]
    activities:
      - {id: hold, type: set, vars: {held: true}, next: nested}
      - id: nested
        type: scope
        activities:
          - {id: sign, type: userTask, title: Sign the booking}
  - {id: late, type: end}
  - {id: done, type: end}
`);
  const inst = (await call(server, 'POST', '/instances', { definition: 'e2e-scope', input: {} })).data;
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/instances/' + inst.id);
  await page.locator('svg.map [data-activity="sign"].state-waiting').waitFor();
  const box = (sel) => page.locator(sel).evaluate((el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, r: r.right, b: r.bottom }; });
  const outer = await box('svg.map [data-scope="booking"] rect');
  const inner = await box('svg.map [data-scope="nested"] rect');
  const inside = (a, o) => a.x >= o.x && a.y >= o.y && a.r <= o.r && a.b <= o.b;
  assert.ok(inside(inner, outer), 'the nested scope is inside its scope');
  assert.ok(inside(await box('svg.map [data-activity="sign"] rect'), inner), 'the task is inside its scope');
  assert.ok(inside(await box('svg.map [data-activity="hold"] rect'), outer));
  assert.ok(!inside(await box('svg.map [data-activity="done"] rect'), outer), 'what follows the scope is outside it');
  assert.match(await page.locator('svg.map [data-scope="booking"]').getAttribute('class'), /state-waiting/);
  assert.match(await page.locator('svg.map [data-activity="booking"]').getAttribute('class'), /state-waiting/);
  assert.equal(await page.locator('svg.map path.edge-boundary').count(), 1, 'the boundary event leaves the scope');
  await shot(page, 'scope');
  await page.context().close();
});

test('instances list: filters in the URL, pages by cursor', async () => {
  for (let i = 0; i < 55; i++) await call(server, 'POST', '/instances', { definition: 'e2e-review', businessKey: 'bulk-' + i });
  const page = await newPage(browser, errors);
  await page.goto(server.url + '/ui/#/instances');
  await page.getByLabel('Definition').selectOption('e2e-review');
  await page.getByLabel('Status').selectOption('waiting');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/status=waiting/);
  await page.locator('table.instances tbody tr').first().waitFor();
  assert.equal(await page.locator('table.instances tbody tr').count(), 50);
  await page.getByRole('link', { name: 'Next →' }).click();
  await page.waitForURL(/cursor=/);
  await page.getByRole('link', { name: '← Previous' }).waitFor();
  assert.ok(await page.locator('table.instances tbody tr').count() >= 5);
  await page.getByLabel('Business key').fill('bulk-7');
  await page.getByRole('button', { name: 'Filter' }).click();
  await waitFor(async () => (await page.locator('table.instances tbody tr').count()) === 1, 'one row for bulk-7');
  await shot(page, 'instances');
  await page.context().close();
});

test('sign in with an API key: roles hide what a user may not do, the stream works with the key', async () => {
  const keys = { root: 'wmk_e2e_admin_key_0123456789', vic: 'wmk_e2e_viewer_key_0123456789', olga: 'wmk_e2e_operator_key_0123456789' };
  const hash = (k) => 'sha256:' + createHash('sha256').update(k).digest('hex');
  const cfg = join(mkdtempSync(join(tmpdir(), 'waymark-e2e-cfg-')), 'waymark.yaml');
  writeFileSync(cfg, 'auth:\n  apiKeys:\n' +
    `    - {user: root, hash: "${hash(keys.root)}", roles: [admin]}\n` +
    `    - {user: vic, hash: "${hash(keys.vic)}", roles: [viewer]}\n` +
    `    - {user: olga, hash: "${hash(keys.olga)}", roles: [operator]}\n`);
  const secure = await startServer(['--config', cfg]);
  const as = (who) => ({ Authorization: 'Bearer ' + keys[who] });
  try {
    await call(secure, 'POST', '/definitions', reviewYAML, as('root'));
    const inst = (await call(secure, 'POST', '/instances?wait=5s', { definition: 'e2e-review' }, as('olga'))).data;
    const page = await newPage(browser, errors);
    const signIn = async (who) => {
      await page.goto(secure.url + '/ui/#/signin');
      await page.getByLabel('API key or JWT').fill(keys[who]);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#who').getByText(who).waitFor();
    };

    await page.goto(secure.url + '/');
    await page.waitForURL(/\/ui\/#\/signin/);
    await page.getByLabel('API key or JWT').fill('wmk_not_a_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token is not accepted').waitFor();
    await shot(page, 'signin');

    await signIn('vic');
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.ok(await page.evaluate(() => sessionStorage.getItem('waymark.session').includes('wmk_e2e_viewer')), 'kept in session storage');
    await page.goto(secure.url + '/ui/#/definitions');
    await page.getByRole('heading', { name: 'Definitions' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Deploy…' }).count(), 0, 'a viewer may not deploy');
    await page.goto(secure.url + `/ui/#/instances/${inst.id}`);
    await page.locator('svg.map [data-activity="review"].state-waiting').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Suspend' }).count(), 0, 'a viewer may not act');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/#\/signin/);
    await signIn('olga');
    await page.goto(secure.url + `/ui/#/instances/${inst.id}`);
    await page.getByRole('button', { name: 'Suspend' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel…' }).count(), 1);
    // The actor of an action is the signed-in user.
    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm suspend' }).click();
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm resume' }).click();
    await page.getByRole('button', { name: 'Suspend' }).waitFor();
    const log = (await call(secure, 'GET', `/instances/${inst.id}/log`, undefined, as('root'))).data.items;
    assert.deepEqual(log.filter((l) => /instance\.(suspended|resumed)/.test(l.event)).map((l) => `${l.event}:${l.actor}`),
      ['instance.suspended:olga', 'instance.resumed:olga']);
    // Live through a stream token made for olga's key.
    const tasks = (await call(secure, 'GET', `/tasks?instance=${inst.id}`, undefined, as('root'))).data.items;
    await call(secure, 'POST', `/tasks/${tasks[0].id}/complete`, { outcome: 'ok' }, as('root'));
    await page.locator('svg.map [data-activity="done"].state-completed').waitFor({ timeout: 5000 });
    await page.context().close();
  } finally {
    await secure.stop();
  }
});

test('no console errors on any page', () => {
  // The browser logs every 4xx answer; those the tests provoke on purpose
  // (a refused form, an invalid definition, a stale action) are the UI
  // working, and it shows them. Anything else is a defect.
  const expected = [
    /(422|412|409)\b.*#\/(deploy|tasks|instances\/)/, // a refused form or definition, a stale action
    /401\b.*#\/signin/, // the wrong key, refused at sign-in
  ];
  assert.deepEqual(errors.filter((e) => !expected.some((re) => re.test(e))), []);
});
