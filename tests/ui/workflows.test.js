// Workflow runs in the UI: a diamond run (root → left, right → join) submitted over the API
// is listed on the workflows page, opened, laid out by depth with each step's state, follows
// its steps live as they finish, links each step to its job and back, and is cancelled from
// its page.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, eventually, launch, unique, waitForText, withPage } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Leases the one available job of `queue` and completes it; returns the job's id. */
async function completeOne(queue) {
  const { jobs } = await api('POST', '/v1/leases', { queues: [queue], worker_id: 'ui-test-worker', max_jobs: 1 });
  assert.equal(jobs.length, 1, `one job of ${queue} to lease`);
  await api('POST', `/v1/jobs/${jobs[0].id}/complete`, { lease_token: jobs[0].lease_token, result: { ok: true } });
  return jobs[0];
}

test('a diamond run is listed, opened, followed live and cancelled', async () => {
  const queue = unique('ui-wf');
  const name = unique('diamond');
  const submitted = await api('POST', '/v1/workflows', {
    name,
    steps: [
      { step: 'root', job: { kind: 'wf-root', queue } },
      { step: 'left', depends_on: ['root'], job: { kind: 'wf-left', queue } },
      { step: 'right', depends_on: ['root'], job: { kind: 'wf-right', queue } },
      { step: 'join', depends_on: ['left', 'right'], job: { kind: 'wf-join', queue } },
    ],
  });
  const id = submitted.workflow.id;
  const jobOf = Object.fromEntries(submitted.steps.map((j) => [j.workflow.step, j.id]));
  const root = await completeOne(queue);
  assert.equal(root.id, jobOf.root, 'only the root is available at first');
  await eventually('the left and right steps to become available', async () => {
    const run = await api('GET', `/v1/workflows/${id}`);
    return run.steps.filter((j) => j.state === 'available').length === 2;
  });

  await withPage(browser, 'workflows-diamond', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('#queues-table');
    await page.click('nav.pages a[data-nav="workflows"]');
    await page.waitForFunction(() => location.hash === '#/workflows');
    const row = `#workflows-table tr[data-id="${id}"]`;
    await page.waitForSelector(row);
    assert.equal(await page.$eval('nav.pages a[aria-current="page"]', (a) => a.textContent), 'Workflows');
    await waitForText(page, `${row} a.run-link`, name);
    await waitForText(page, `${row} .badge`, 'running');
    await waitForText(page, `${row} .steps-done`, '1 / 4');
    await waitForText(page, `${row} .failed-steps`, '0');

    // The state filter keeps it among running runs and leaves it out of completed ones.
    await page.selectOption('#workflows-state', 'completed');
    await page.waitForFunction(() => location.hash === '#/workflows?state=completed');
    await page.waitForSelector(`${row}`, { state: 'detached' });
    await page.selectOption('#workflows-state', 'running');
    await page.waitForSelector(row);

    await page.click(`${row} a.run-link`);
    await page.waitForFunction((want) => location.hash === `#/workflows/${want}`, id);
    await waitForText(page, '#workflow-state .badge', 'running');
    await page.waitForFunction(() => document.querySelectorAll('#workflow-steps li.step').length === 4);
    // One column per depth: the root, then left and right, then the join.
    const layout = await page.$$eval('#workflow-steps .layer', (ls) => ls.map((l) => [...l.querySelectorAll('li.step')].map((s) => s.dataset.step)));
    assert.deepEqual(layout, [['root'], ['left', 'right'], ['join']]);
    const step = (s) => `#workflow-steps li.step[data-step="${s}"]`;
    await waitForText(page, `${step('root')} .badge`, 'completed');
    await waitForText(page, `${step('left')} .badge`, 'available');
    await waitForText(page, `${step('right')} .badge`, 'available');
    await waitForText(page, `${step('join')} .badge`, 'pending');
    await waitForText(page, `${step('join')} .step-note`, 'waiting on 2 of 2');
    await waitForText(page, '#workflow-done', '1 of 4');
    assert.equal(await page.$eval(`${step('join')} a.step-name`, (a) => a.getAttribute('href')), `#/jobs/${jobOf.join}`);
    assert.equal(await page.$eval('#workflow-cancel', (b) => b.disabled), false, 'a running run can be cancelled');
    assert.equal(await page.$eval('#workflow-retry', (b) => b.disabled), true, 'a running run cannot be retried');

    // A step finishing elsewhere shows without a reload (the event stream).
    await page.evaluate(() => { window.__noReload = true; });
    const middle = await completeOne(queue);
    const which = middle.id === jobOf.left ? 'left' : 'right';
    await waitForText(page, `${step(which)} .badge`, 'completed');
    await waitForText(page, `${step('join')} .step-note`, 'waiting on 1 of 2');
    await waitForText(page, '#workflow-done', '2 of 4');
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');

    // A step's job page links back to its run.
    await page.click(`${step('join')} a.step-name`);
    await page.waitForFunction((want) => location.hash === `#/jobs/${want}`, jobOf.join);
    await waitForText(page, '#job-state .badge', 'pending');
    await waitForText(page, '#job-step', 'join');
    await page.click('#job-workflow');
    await page.waitForFunction((want) => location.hash === `#/workflows/${want}`, id);
    await waitForText(page, `${step('join')} .badge`, 'pending');

    // Cancel, confirmed in the dialog: the waiting steps are cancelled and the run with them.
    await page.click('#workflow-cancel');
    await page.waitForSelector('#confirm[open]');
    await page.keyboard.press('Enter'); // the confirm button has focus
    await waitForText(page, '#workflow-state .badge', 'cancelled');
    await waitForText(page, `${step('join')} .badge`, 'cancelled');
    await waitForText(page, `${step(which === 'left' ? 'right' : 'left')} .badge`, 'cancelled');
    await waitForText(page, `${step('root')} .badge`, 'completed');
    assert.equal((await api('GET', `/v1/workflows/${id}`)).workflow.state, 'cancelled');
    assert.equal(await page.$eval('#workflow-cancel', (b) => b.disabled), true, 'a finished run cannot be cancelled');
    assert.equal(await page.$eval('#workflow-retry', (b) => b.disabled), false, 'a cancelled run can be retried');

    // Back on the list, the run reads cancelled.
    await page.keyboard.press('u');
    await page.waitForFunction(() => location.hash === '#/workflows');
    await waitForText(page, `${row} .badge`, 'cancelled');
  });
});
