// Shared support for the browser tests: the server under test (HOPPER_UI_URL, started by
// scripts/test-ui.sh), a Chromium driven by playwright-core (installed under target/ by the
// script, so it is loaded from there), an HTTP client for the API, and a page wrapper that
// fails the test on any console error, uncaught exception, failed request or error answer.

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const BASE = process.env.HOPPER_UI_URL;
if (!BASE) throw new Error('HOPPER_UI_URL is not set: run the browser tests with scripts/test-ui.sh');
/** The admin key of the server under test (it runs with authentication on). */
export const KEY = process.env.HOPPER_UI_KEY;
if (!KEY) throw new Error('HOPPER_UI_KEY is not set: run the browser tests with scripts/test-ui.sh');

const modules = process.env.HOPPER_UI_NODE_MODULES;
if (!modules) throw new Error('HOPPER_UI_NODE_MODULES is not set: run the browser tests with scripts/test-ui.sh');
const require = createRequire(path.join(modules, 'noop.js'));
const { chromium } = require('playwright-core');

export const SHOTS = process.env.HOPPER_UI_SCREENSHOTS || path.resolve('target/ui-screenshots');
mkdirSync(SHOTS, { recursive: true });

/** A fresh name, so tests sharing one server never see each other's jobs. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Launches headless Chromium (the system's; no browser is downloaded). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A page in its own context (`colorScheme` light or dark), watched for problems. Call
 * `check()` to fail with every problem seen so far, and `close()` at the end (which checks).
 */
export async function openPage(browser, { colorScheme = 'light', width = 1400, height = 950, key = KEY } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme, deviceScaleFactor: 1 });
  // Logged in the way the page itself logs in: the session and CSRF cookies land in this
  // context's jar. `key: null` leaves the page logged out.
  if (key) {
    const resp = await context.request.post(`${BASE}/v1/session`, { data: { key } });
    if (!resp.ok()) throw new Error(`logging in answered ${resp.status()}: ${await resp.text()}`);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = [];
  let leaving = false;
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()} (${msg.location().url || 'page'})`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception: ${err.stack || err.message}`));
  page.on('requestfailed', (req) => {
    // The event stream is cut on purpose when the page reloads or closes.
    if (leaving && req.url().includes('/v1/events')) return;
    problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  page.on('response', (resp) => {
    if (resp.status() >= 400) problems.push(`error answer: ${resp.request().method()} ${resp.url()} → ${resp.status()}`);
  });
  return {
    page,
    problems,
    /** Throws, listing every problem, if any was seen. */
    check() {
      if (problems.length) {
        throw new Error(`the page reported ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
      }
    },
    /** Runs `fn` (a reload, a close) while the live stream may be cut without complaint. */
    async leaving(fn) {
      leaving = true;
      try {
        return await fn();
      } finally {
        leaving = false;
      }
    },
    async close() {
      leaving = true;
      await context.close();
      if (problems.length) {
        throw new Error(`the page reported ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
      }
    },
  };
}

/** Saves `page` as target/ui-screenshots/<name>.png. */
export async function screenshot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/**
 * Runs a test body with a watched page, saving a FAILED-<name>.png screenshot and naming the
 * page's URL when it fails, so a CI log says where the UI was.
 */
export async function withPage(browser, name, opts, body) {
  const w = await openPage(browser, opts);
  try {
    await body(w);
    w.check();
  } catch (e) {
    try {
      await screenshot(w.page, `FAILED-${name}`);
    } catch {
      // The page may be gone; the error below is what matters.
    }
    e.message = `${e.message}\n    at page ${w.page.url()} (screenshot: target/ui-screenshots/FAILED-${name}.png)`;
    await w.leaving(() => w.page.context().close()).catch(() => {});
    throw e;
  }
  await w.close();
}

/** Calls the API with `key` (the admin key by default); returns the parsed answer, throws
 * naming the call on a non-2xx status. */
export async function api(method, p, body, { key = KEY, namespace = null } = {}) {
  const init = { method, headers: { authorization: `Bearer ${key}` } };
  if (namespace) init.headers['x-hopper-namespace'] = namespace;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(`${BASE}${p}`, init);
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${p} answered ${resp.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Enqueues one job; returns it. */
export function enqueue(job) {
  return api('POST', '/v1/jobs', job);
}

/** Leases up to `max` jobs of `queue` without waiting. */
export async function lease(queue, max = 1, worker = 'ui-test-worker') {
  const r = await api('POST', '/v1/leases', { queues: [queue], worker_id: worker, max_jobs: max });
  return r.jobs;
}

/** Enqueues a job, leases it and fails it for good with `message`; returns its id. */
export async function makeDead(job, message) {
  const created = await enqueue(job);
  const leased = await lease(created.queue || 'default', 1);
  if (leased.length !== 1 || leased[0].id !== created.id) {
    throw new Error(`expected to lease ${created.id}, got ${JSON.stringify(leased.map((j) => j.id))}`);
  }
  await api('POST', `/v1/jobs/${created.id}/fail`, {
    lease_token: leased[0].lease_token,
    error: { message, kind: 'test_error', retryable: false },
  });
  return created.id;
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
export async function eventually(what, fn, ms = 5000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) {
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until `selector`'s text is `text` (trimmed), failing with what it was instead. */
export async function waitForText(page, selector, text, ms = 5000) {
  try {
    await page.waitForFunction(([sel, want]) => {
      const el = document.querySelector(sel);
      return el && el.textContent.trim() === want;
    }, [selector, String(text)], { timeout: ms });
  } catch {
    const now = await page.$eval(selector, (el) => el.textContent.trim()).catch(() => '(no such element)');
    throw new Error(`expected ${selector} to read "${text}" within ${ms} ms, it reads "${now}"`);
  }
}
