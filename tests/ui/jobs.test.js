// Finding and retrying a dead job from the UI: search on the jobs page, open the job, retry
// it with its keyboard shortcut, and the API then shows it available. Also bulk actions on
// selected rows.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, enqueue, eventually, launch, makeDead, unique, waitForText, withPage } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a dead job is found by search, opened and retried from the UI', async () => {
  const kind = unique('ui-search');
  const queue = unique('ui-jobs');
  const id = await makeDead({ kind, queue, tags: ['ui-test'], args: { card: 'visa' } }, 'card declined by the bank');
  // Others that the search must leave out.
  await enqueue({ kind: 'other-kind', queue });
  await enqueue({ kind: 'unrelated', queue: unique('ui-noise') });

  await withPage(browser, 'jobs-search-retry', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('#queues-table');
    // `/` jumps to the jobs page's search field from anywhere.
    await page.keyboard.press('/');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'search');
    assert.match(page.url(), /#\/jobs/);
    await page.keyboard.type(kind);
    await page.waitForFunction((want) => location.hash.includes(`q=${want}`), kind);
    await page.waitForSelector(`#jobs-table tr[data-id="${id}"]`);
    const rows = await page.$$eval('#jobs-table tbody tr', (trs) => trs.map((tr) => tr.dataset.id));
    assert.deepEqual(rows, [id], 'only the searched job is listed');
    await waitForText(page, `#jobs-table tr[data-id="${id}"] .badge`, 'dead');

    // Open it from the keyboard: down into the results, Enter on the row's link.
    await page.focus('#search');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForFunction((want) => location.hash === `#/jobs/${want}`, id);
    await waitForText(page, '#job-state .badge', 'dead');
    await page.waitForSelector('#job-attempts .err-msg');
    assert.equal(await page.$eval('#job-attempts .err-msg', (el) => el.textContent), 'card declined by the bank');
    assert.match(await page.$eval('#job-args', (el) => el.textContent), /"card": "visa"/);
    const timeline = await page.$$eval('#job-timeline li', (lis) => lis.map((li) => li.dataset.to));
    assert.deepEqual(timeline, ['available', 'running', 'dead']);
    assert.equal(await page.$eval('#job-delete', (b) => b.disabled), false, 'a dead job can be deleted');

    // Retry with the page's shortcut.
    assert.equal(await page.$eval('#job-retry', (b) => b.disabled), false);
    await page.locator('main').focus();
    await page.keyboard.press('r');
    await eventually('the API to show the job available', async () => (await api('GET', `/v1/jobs/${id}`)).state === 'available');
    // The page follows: new state, a new timeline entry, and the explanation of its wait.
    await waitForText(page, '#job-state .badge', 'available');
    await page.waitForSelector('#job-timeline li:nth-child(4)[data-to="available"]');
    await page.waitForSelector('#job-explain:not([hidden]) .summary');
    assert.equal(await page.$eval('#job-retry', (b) => b.disabled), true, 'an available job cannot be retried');
  });
});

test('selected rows are cancelled in one bulk action', async () => {
  const queue = unique('ui-bulk');
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await enqueue({ kind: 'bulk-test', queue })).id);

  await withPage(browser, 'jobs-bulk', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/jobs?queue=${queue}`);
    await page.waitForSelector(`#jobs-table tr[data-id="${ids[0]}"]`);
    // Select two rows from the keyboard: j moves, x selects.
    await page.locator('main').focus();
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    await waitForText(page, '#selected-count', '2 selected');
    await page.click('#bulk-cancel');
    await page.waitForSelector('#confirm[open]');
    await page.keyboard.press('Enter'); // the confirm button has focus
    await waitForText(page, '#bulk-status', 'Cancel: 2 done');
    const states = await Promise.all(ids.map(async (id) => (await api('GET', `/v1/jobs/${id}`)).state));
    // Newest first: the first two rows are the last two enqueued.
    assert.deepEqual(states, ['available', 'cancelled', 'cancelled']);
    await waitForText(page, `#jobs-table tr[data-id="${ids[2]}"] .badge`, 'cancelled');
  });
});
