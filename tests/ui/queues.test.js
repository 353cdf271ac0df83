// Queues from the UI: pause one with the keyboard and the API shows it paused; set a limit
// in the configuration form and the API shows it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, enqueue, eventually, launch, unique, waitForText, withPage } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a queue is paused from the UI and the API shows it paused', async () => {
  const queue = unique('ui-pause');
  await enqueue({ kind: 'pause-test', queue });

  await withPage(browser, 'queues-pause', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/queues`);
    const row = `#queues-list tr[data-queue="${queue}"]`;
    await waitForText(page, `${row} .status .badge`, 'active');
    await page.focus(`${row} button[data-role="pause"]`);
    await page.keyboard.press('Enter');
    await eventually('the API to show the queue paused', async () => (await api('GET', `/v1/queues/${queue}`)).paused === true);
    await waitForText(page, `${row} .status .badge`, 'paused');
    await waitForText(page, `${row} button[data-role="pause"]`, 'Resume');
  });
});

test('a queue limit is set in the configuration form', async () => {
  const queue = unique('ui-limits');
  await enqueue({ kind: 'limit-test', queue });

  await withPage(browser, 'queue-config', {}, async ({ page }) => {
    await page.goto(`${BASE}/#/queues/${queue}`);
    await page.waitForFunction(() => document.getElementById('queue-counts').textContent.includes('available'));
    await page.fill('#cfg-concurrency', '5');
    await page.fill('#cfg-rate-limit', '100');
    await page.fill('#cfg-rate-period_ms', '1000');
    await page.selectOption('#cfg-policy', 'fair');
    await page.click('#queue-save');
    await page.waitForFunction(() => document.querySelector('#queue-config .form-status').textContent.startsWith('Saved'));
    const q = await api('GET', `/v1/queues/${queue}`);
    assert.equal(q.config.concurrency, 5);
    assert.deepEqual(q.config.rate, { limit: 100, period_ms: 1000 });
    assert.equal(q.config.policy, 'fair');
    assert.equal(q.paused, false);
  });
});
