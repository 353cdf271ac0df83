// The UI with authentication on: a logged-out page asks for a key and refuses a bad one; a
// namespace-scoped viewer sees its namespace's jobs and none of another's, live; the page
// runs under its strict policy (any violation is a console error, which fails the test); the
// audit log lists administrative actions; logging out returns to the login.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, launch, openPage, unique, waitForText, withPage } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Creates a key with the admin key; returns its text. */
async function key(role, namespaces) {
  const created = await api('POST', '/v1/keys', { name: unique(`ui-${role}`), role, namespaces });
  return created.token;
}

test('a logged-out page asks for a key, refuses a bad one and logs in with a good one', async () => {
  const viewer = await key('viewer', ['default']);
  const w = await openPage(browser, { key: null });
  const { page } = w;
  try {
    await page.goto(`${BASE}/#/jobs`);
    await page.waitForSelector('#login-form');
    assert.equal(await page.$('#jobs-table'), null, 'no data before logging in');
    await page.fill('#login-key', 'hop_0000000000000000_0000000000000000000000000000000000000000000000000000000000000000');
    await page.click('#login-submit');
    await waitForText(page, '#login-error', 'Not accepted: the API key is not valid');
    // The refused attempt is the one expected error answer.
    const refused = w.problems.splice(0).filter((p) => !p.includes('/v1/session') || !p.includes('401'));
    assert.deepEqual(refused, []);
    await page.fill('#login-key', viewer);
    await page.click('#login-submit');
    await page.waitForSelector('#jobs-table');
    await waitForText(page, '#who', `viewer · ${viewer.slice(4, 12)}`);
    // The key is in an HttpOnly cookie: the page's scripts cannot read it.
    const visible = await page.evaluate(() => document.cookie);
    assert.ok(!visible.includes(viewer.slice(21)), 'the session key is not readable by scripts');
    assert.ok(visible.includes('hopper_csrf='), 'the CSRF token is');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'hopper_session');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    // Logging out returns to the login.
    await w.leaving(async () => {
      await page.click('#logout');
      await page.waitForSelector('#login-form');
    });
    w.check();
  } finally {
    await w.leaving(() => page.context().close());
  }
});

test('a namespace viewer sees its own jobs, live, and nothing of another namespace', async () => {
  const ns = unique('ui-tenant');
  const other = unique('ui-other');
  const viewer = await key('viewer', [ns]);
  const mine = await api('POST', '/v1/jobs', { kind: unique('mine'), queue: 'ui-tenancy' }, { namespace: ns });
  const theirs = await api('POST', '/v1/jobs', { kind: unique('theirs'), queue: 'ui-tenancy' }, { namespace: other });

  await withPage(browser, 'auth-tenancy', { key: viewer }, async ({ page }) => {
    await page.goto(`${BASE}/#/jobs`);
    await page.waitForSelector(`#jobs-table tr[data-id="${mine.id}"]`);
    assert.equal(await page.$(`#jobs-table tr[data-id="${theirs.id}"]`), null);
    // The overview follows this namespace's queue live, and only it: the same queue name in
    // another namespace counts for nothing here.
    await page.click('nav.pages a[data-nav="overview"]');
    const row = '#queues-table tr[data-queue="ui-tenancy"]';
    await waitForText(page, `${row} td[data-state="available"]`, '1', 6000);
    await page.waitForSelector('#live[data-state="live"]');
    await api('POST', '/v1/jobs', { kind: unique('leak'), queue: 'ui-tenancy' }, { namespace: other });
    await api('POST', '/v1/jobs', { kind: unique('leak'), queue: 'ui-tenancy' }, { namespace: other });
    await api('POST', '/v1/jobs', { kind: unique('later'), queue: 'ui-tenancy' }, { namespace: ns });
    await waitForText(page, `${row} td[data-state="available"]`, '2', 6000);
    const events = await page.$$eval('#recent-events a', (as) => as.map((a) => a.title));
    assert.ok(!events.includes(theirs.id), 'no event of another namespace');
  });
});

test('the audit log lists administrative actions with who made them', async () => {
  const queue = unique('ui-audit');
  await api('POST', `/v1/queues/${queue}/pause`, {});
  await withPage(browser, 'auth-audit', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/audit`);
    const row = `#audit-table tr[data-action="queue.pause"]`;
    await page.waitForSelector(row);
    const targets = await page.$$eval(`${row} .target`, (els) => els.map((e) => e.textContent));
    assert.ok(targets.includes(queue), `${queue} among ${targets}`);
    assert.equal(await page.$eval('nav.pages a[aria-current="page"]', (a) => a.textContent), 'Audit');
  });
});
