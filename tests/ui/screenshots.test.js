// Every page in light and dark, saved to target/ui-screenshots/<page>-<theme>.png over a
// small realistic data set. Light follows the system preference; dark is chosen with the
// theme switch (`t`), which is remembered across a reload. Any console error or failed
// request on any page fails the test.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { BASE, api, enqueue, eventually, launch, lease, makeDead, screenshot, withPage } from './harness.js';

let browser;
let deadJob;
let waitingJob;
let workflowRun;

/** A few queues in every state, dead letters in two groups, a worker, a schedule. */
async function seed() {
  for (let i = 0; i < 8; i++) {
    const j = await enqueue({ kind: 'send_email', queue: 'emails', tags: ['welcome'], args: { to: `user${i}@example.com` } });
    const [l] = await lease('emails', 1, 'mailer-1:pid-4242');
    await api('POST', `/v1/jobs/${l.id}/complete`, { lease_token: l.lease_token, result: { message_id: `m-${i}` } });
    if (l.id !== j.id) throw new Error('leased another job than the one just enqueued');
  }
  for (let i = 0; i < 3; i++) await makeDead({ kind: 'send_email', queue: 'emails', args: { to: `bounce${i}@example.com` } }, 'SMTP 550: mailbox unavailable');
  await makeDead({ kind: 'send_sms', queue: 'sms', args: { to: '+10000000000' } }, 'provider answered 503 Service Unavailable');

  // A job that failed once (retryable), then for good: two attempts, two errors.
  const twice = await enqueue({ kind: 'render_report', queue: 'reports-dlq', max_attempts: 2, tags: ['monthly', 'pdf'], args: { month: '2026-04', format: 'pdf' } });
  let [l] = await lease('reports-dlq', 1, 'reporter-7');
  await api('POST', `/v1/jobs/${twice.id}/fail`, { lease_token: l.lease_token, error: { message: 'template not found: monthly.tpl', kind: 'TemplateError' }, retry_in_ms: 0 });
  l = await eventually('the retry to become available', async () => (await lease('reports-dlq', 1, 'reporter-7'))[0], 5000);
  await api('POST', `/v1/jobs/${twice.id}/fail`, { lease_token: l.lease_token, error: { message: 'template not found: monthly.tpl', kind: 'TemplateError' } });
  deadJob = twice.id;

  for (let i = 0; i < 4; i++) await enqueue({ kind: 'send_email', queue: 'emails', args: { to: `later${i}@example.com` } });
  await enqueue({ kind: 'send_email', queue: 'emails', delay_ms: 3_600_000 });
  await lease('emails', 1, 'mailer-2:pid-77'); // stays running

  await api('PUT', '/v1/queues/reports', { paused: true, concurrency: 2, rate: { limit: 10, period_ms: 60_000 } });
  waitingJob = (await enqueue({ kind: 'build_report', queue: 'reports', args: { id: 42 } })).id;

  await api('POST', '/v1/schedules', {
    name: 'nightly-digest', cron: '30 2 * * *', timezone: 'Europe/Berlin',
    job: { kind: 'send_digest', queue: 'emails' },
  }).catch((e) => { if (!String(e.message).includes('409')) throw e; });
  await api('POST', '/v1/schedules', {
    name: 'hourly-cleanup', cron: '@hourly', job: { kind: 'cleanup', queue: 'maintenance' }, paused: true,
  }).catch((e) => { if (!String(e.message).includes('409')) throw e; });
  await api('POST', '/v1/schedules/nightly-digest/trigger', {});

  // Workflows: a run part way through (one step done, one running, two waiting behind them), a
  // failed run, and a definition on a cron.
  const etl = await api('POST', '/v1/workflows', {
    name: 'nightly-report',
    steps: [
      { step: 'extract', job: { kind: 'extract', queue: 'etl', args: { day: '2026-11-30' } } },
      { step: 'clean', depends_on: ['extract'], job: { kind: 'clean', queue: 'etl' } },
      { step: 'stats', depends_on: ['extract'], on_failure: 'continue', job: { kind: 'stats', queue: 'etl-stats' } },
      { step: 'publish', depends_on: ['clean', 'stats'], job: { kind: 'publish', queue: 'etl' } },
      { step: 'notify', depends_on: ['publish'], on_failure: 'ignore', job: { kind: 'notify', queue: 'etl' } },
    ],
  });
  workflowRun = etl.workflow.id;
  const [extract] = await lease('etl', 1, 'etl-worker-1');
  await api('POST', `/v1/jobs/${extract.id}/complete`, { lease_token: extract.lease_token, result: { rows: 1200 } });
  await api('POST', '/v1/leases', { queues: ['etl'], worker_id: 'etl-worker-1', max_jobs: 1, lease_ms: 600_000 }); // clean stays running
  await api('POST', '/v1/workflows', {
    name: 'import-invoices',
    steps: [
      { step: 'fetch', job: { kind: 'fetch_invoices', queue: 'etl-failing', max_attempts: 1 } },
      { step: 'load', depends_on: ['fetch'], job: { kind: 'load_invoices', queue: 'etl-failing' } },
    ],
  });
  const [fetchJob] = await lease('etl-failing', 1, 'etl-worker-2');
  await api('POST', `/v1/jobs/${fetchJob.id}/fail`, { lease_token: fetchJob.lease_token, error: { message: 'upstream answered 502', kind: 'HttpError', retryable: false } });
  await api('PUT', '/v1/workflows/definitions/nightly-etl', {
    cron: '0 2 * * *', timezone: 'Europe/Paris', params: { region: 'eu' },
    steps: [
      { step: 'extract', job: { kind: 'extract', queue: 'etl', args: { region: '{{params.region}}', day: '{{logical_date}}' } } },
      { step: 'load', depends_on: ['extract'], job: { kind: 'load', queue: 'etl' } },
    ],
  });
}

before(async () => {
  browser = await launch();
  await seed();
});
after(async () => { await browser?.close(); });

/** Visits every page through the UI's own navigation (no reloads) and saves each. */
async function visitAll(page, theme) {
  await page.goto(`${BASE}/#/`);
  await page.waitForSelector('#live[data-state="live"]');
  await page.waitForSelector('#queues-table tr[data-queue="emails"]');
  await page.waitForSelector('#workers-table tr[data-worker]');
  await page.waitForSelector('#chart-throughput canvas');
  // Let a few statistics buckets arrive so the charts have lines.
  await page.waitForTimeout(2500);
  await screenshot(page, `overview-${theme}`);

  await page.keyboard.press('g');
  await page.keyboard.press('j');
  await page.waitForSelector('#jobs-table tbody tr[data-id]');
  await screenshot(page, `jobs-${theme}`);

  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, deadJob);
  await page.waitForSelector('#job-attempts tbody tr[data-lease="2"] .err-msg');
  await page.waitForSelector('#job-timeline li[data-to="dead"]');
  await screenshot(page, `job-${theme}`);

  await page.evaluate((id) => { location.hash = `#/jobs/${id}`; }, waitingJob);
  await page.waitForSelector('#job-explain:not([hidden]) li[data-code="queue_paused"]');
  await screenshot(page, `job-waiting-${theme}`);

  await page.keyboard.press('g');
  await page.keyboard.press('d');
  await page.waitForSelector('#dead-groups li.group');
  await screenshot(page, `dead-letters-${theme}`);

  await page.keyboard.press('g');
  await page.keyboard.press('q');
  await page.waitForSelector('#queues-list tr[data-queue="reports"] .badge.paused');
  await screenshot(page, `queues-${theme}`);

  await page.evaluate(() => { location.hash = '#/queues/reports'; });
  await page.waitForFunction(() => document.getElementById('cfg-concurrency').value === '2');
  await screenshot(page, `queue-${theme}`);

  await page.keyboard.press('g');
  await page.keyboard.press('s');
  await page.waitForSelector('#schedules-table tr[data-schedule="nightly-digest"] .next-fire time');
  await screenshot(page, `schedules-${theme}`);

  await page.keyboard.press('g');
  await page.keyboard.press('w');
  await page.waitForSelector(`#workflows-table tr[data-id="${workflowRun}"]`);
  await page.waitForSelector('#workflows-table tr[data-state="failed"]');
  await page.waitForSelector('#definitions-table tr[data-definition="nightly-etl"]');
  await screenshot(page, `workflows-${theme}`);

  await page.evaluate((id) => { location.hash = `#/workflows/${id}`; }, workflowRun);
  await page.waitForSelector('#workflow-steps li.step[data-step="clean"][data-state="running"]');
  await page.waitForSelector('#workflow-steps li.step[data-step="notify"][data-state="pending"]');
  await screenshot(page, `workflow-${theme}`);

  await page.keyboard.press('?');
  await page.waitForSelector('#help[open] dl.keys');
  await screenshot(page, `help-${theme}`);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('help').open);
}

async function background(page) {
  return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

test('every page in light, following the system preference', async () => {
  await withPage(browser, 'pages-light', { colorScheme: 'light' }, async ({ page }) => {
    await visitAll(page, 'light');
    assert.equal(await background(page), 'rgb(245, 246, 248)');
  });
});

test('every page in dark, chosen with the theme switch and remembered', async () => {
  await withPage(browser, 'pages-dark', { colorScheme: 'light' }, async (w) => {
    const { page } = w;
    await page.goto(`${BASE}/#/`);
    await page.waitForSelector('#queues-table');
    // system → light → dark
    await page.keyboard.press('t');
    await page.keyboard.press('t');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await page.evaluate(() => localStorage.getItem('hopper.theme')), 'dark');
    await w.leaving(() => page.reload());
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the choice survives a reload');
    await visitAll(page, 'dark');
    assert.equal(await background(page), 'rgb(17, 20, 24)');
    // Back to following the system.
    await page.keyboard.press('t');
    assert.equal(await page.evaluate(() => localStorage.getItem('hopper.theme')), null);
    assert.equal(await background(page), 'rgb(245, 246, 248)');
  });
});

test('the system dark preference applies without a choice', async () => {
  await withPage(browser, 'system-dark', { colorScheme: 'dark' }, async ({ page }) => {
    await page.goto(`${BASE}/#/queues`);
    await page.waitForSelector('#queues-list tr[data-queue]');
    assert.equal(await background(page), 'rgb(17, 20, 24)');
  });
});
