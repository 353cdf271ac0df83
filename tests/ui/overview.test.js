// The overview follows the server live: jobs enqueued, leased and completed through the API
// change the counts on screen without a reload, and the charts read GET /v1/stats every
// second.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, enqueue, eventually, launch, lease, unique, waitForText, withPage } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('overview counts follow enqueue, lease and complete without a reload', async () => {
  await withPage(browser, 'overview-live', {}, async ({ page }) => {
    const stats = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/v1/stats') stats.push(r.status());
    });
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('#live[data-state="live"]');
    await page.waitForSelector('#queues-table');
    // Survives only if the page is never reloaded or navigated away from.
    await page.evaluate(() => { window.hopperTestMarker = 'still here'; });
    const navigations = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });

    const queue = unique('ui-live');
    const row = `#queues-table tr[data-queue="${queue}"]`;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await enqueue({ kind: 'overview-test', queue })).id);
    // The page is never reloaded; the counts follow on the event stream (or its 5 s fallback).
    await waitForText(page, `${row} td[data-state="available"]`, '3', 6000);

    const leased = await lease(queue, 2);
    assert.equal(leased.length, 2);
    await waitForText(page, `${row} td[data-state="running"]`, '2', 6000);
    await waitForText(page, `${row} td[data-state="available"]`, '1', 6000);

    for (const j of leased) {
      await api('POST', `/v1/jobs/${j.id}/complete`, { lease_token: j.lease_token, result: { ok: true } });
    }
    await waitForText(page, `${row} td[data-state="completed"]`, '2', 6000);
    await waitForText(page, `${row} td[data-state="running"]`, '0', 6000);

    // The latest-events list shows the completions as they happened.
    for (const j of leased) {
      await page.waitForSelector(`#recent-events a[title="${j.id}"]`, { timeout: 6000 });
    }
    // The worker that leased is listed with its queue.
    await page.waitForSelector('#workers-table tr[data-worker="ui-test-worker"]', { timeout: 6000 });

    // Statistics are read every second and reach the tiles.
    await eventually('two answers of GET /v1/stats', () => stats.filter((s) => s === 200).length >= 2, 5000);
    await eventually('a completion rate on the tile', async () => {
      const v = await page.$eval('[data-tile="throughput"] .tile-value', (el) => el.textContent.trim());
      return v !== '—' && Number.parseFloat(v) > 0;
    }, 5000);
    assert.ok(await page.$('#chart-throughput canvas'), 'the throughput chart is drawn');

    assert.equal(await page.evaluate(() => window.hopperTestMarker), 'still here', 'the page was reloaded');
    assert.deepEqual(navigations, [], 'the page navigated');
    assert.equal(new URL(page.url()).hash, '#/');
  });
});
