// The UI's entry point: routes on the URL fragment (`#/jobs?state=dead`), so every deep link
// loads the same page from the server; mounts one page at a time; owns the header (navigation,
// live indicator, theme switch, help) and the global shortcuts.

import { replace } from './dom.js';
import { installKeys, renderHelp, setPageKeys } from './keys.js';
import { onLiveState } from './live.js';
import * as overview from './pages/overview.js';
import * as jobs from './pages/jobs.js';
import * as job from './pages/job.js';
import * as dead from './pages/dead.js';
import * as queues from './pages/queues.js';
import * as queue from './pages/queue.js';
import * as schedules from './pages/schedules.js';
import * as workflows from './pages/workflows.js';
import * as workflow from './pages/workflow.js';
import * as audit from './pages/audit.js';
import { showAccount, showLogin, whoami } from './session.js';

// [pattern, page module, nav entry]; the first match wins.
const ROUTES = [
  [/^\/?$/, overview, 'overview'],
  [/^\/jobs$/, jobs, 'jobs'],
  [/^\/jobs\/([^/]+)$/, job, 'jobs'],
  [/^\/dead$/, dead, 'dead'],
  [/^\/queues$/, queues, 'queues'],
  [/^\/queues\/([^/]+)$/, queue, 'queues'],
  [/^\/schedules$/, schedules, 'schedules'],
  [/^\/workflows$/, workflows, 'workflows'],
  [/^\/workflows\/([^/]+)$/, workflow, 'workflows'],
  [/^\/audit$/, audit, 'audit'],
];

const main = document.getElementById('main');
let current = null; // {module, path, page}

function parseHash() {
  const raw = location.hash.startsWith('#') ? location.hash.slice(1) : '';
  const [path, query = ''] = raw.split('?');
  return { path: path || '/', params: new URLSearchParams(query) };
}

function route() {
  const { path, params } = parseHash();
  let match = null;
  for (const [re, module, nav] of ROUTES) {
    const m = path.match(re);
    if (m) {
      match = { module, nav, args: m.slice(1).map(decodeURIComponent) };
      break;
    }
  }
  for (const a of document.querySelectorAll('nav.pages a')) {
    if (match && a.dataset.nav === match.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // The same page with other parameters updates in place (a filter, a page of results).
  if (current && match && current.module === match.module && current.path === path && current.page.update) {
    current.page.update(params);
    return;
  }
  if (current) {
    current.page.unmount();
    current = null;
  }
  setPageKeys({});
  if (!match) {
    document.title = 'Not found · Hopper';
    replace(main, notFound(path));
    return;
  }
  main.replaceChildren();
  const page = match.module.mount(main, { args: match.args, params });
  current = { module: match.module, path, page };
  setPageKeys(page.keys || {});
  document.title = `${page.title || 'Hopper'} · Hopper`;
  // Keyboard users land at the start of the new page, not on a link of the old one.
  if (document.activeElement && document.activeElement !== document.body && !main.contains(document.activeElement)) {
    main.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function notFound(path) {
  const p = document.createElement('p');
  p.className = 'notice';
  p.textContent = `Nothing lives at ${path}. `;
  const a = document.createElement('a');
  a.href = '#/';
  a.textContent = 'Back to the overview';
  p.appendChild(a);
  return p;
}

// Theme: "system" follows prefers-color-scheme; a choice is remembered in localStorage.
const THEMES = ['system', 'light', 'dark'];

function currentTheme() {
  const t = document.documentElement.getAttribute('data-theme');
  return t === 'light' || t === 'dark' ? t : 'system';
}

function applyTheme(t) {
  if (t === 'system') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', t);
  try {
    if (t === 'system') localStorage.removeItem('hopper.theme');
    else localStorage.setItem('hopper.theme', t);
  } catch {
    // Storage disabled: the choice lasts until the page is closed.
  }
  showTheme();
  document.dispatchEvent(new CustomEvent('hopper:theme'));
}

function showTheme() {
  const btn = document.getElementById('theme-toggle');
  const t = currentTheme();
  btn.textContent = t === 'system' ? 'Theme: system' : t === 'light' ? 'Theme: light' : 'Theme: dark';
  btn.setAttribute('aria-label', `Theme: ${t}. Switch theme (t)`);
}

function cycleTheme() {
  const t = currentTheme();
  applyTheme(THEMES[(THEMES.indexOf(t) + 1) % THEMES.length]);
}

// The system theme changing matters only while following it: charts repaint.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (currentTheme() === 'system') document.dispatchEvent(new CustomEvent('hopper:theme'));
});

function openHelp() {
  const dlg = document.getElementById('help');
  if (dlg.open) {
    dlg.close();
    return;
  }
  renderHelp(document.getElementById('help-list'));
  dlg.showModal();
  document.getElementById('help-close').focus();
}

function focusSearch() {
  const { path } = parseHash();
  if (path !== '/jobs') location.hash = '#/jobs';
  // After a page change the field exists once the router ran (hashchange is synchronous
  // only in tests); look for it on the next frames.
  let tries = 0;
  const find = () => {
    const el = document.getElementById('search');
    if (el) {
      el.focus();
      el.select();
    } else if (tries++ < 20) requestAnimationFrame(find);
  };
  find();
}

// Logs in first when the server needs a key, then starts the page.
async function start() {
  let me;
  try {
    me = await whoami();
  } catch {
    // The server did not answer: start anyway, the pages say what fails.
    me = undefined;
  }
  if (me === null) {
    await showLogin(main);
    me = await whoami().catch(() => null);
  }
  if (me) showAccount(document.getElementById('account'), me);
  init();
}

function init() {
  document.getElementById('theme-toggle').addEventListener('click', cycleTheme);
  document.getElementById('help-button').addEventListener('click', openHelp);
  document.getElementById('help-close').addEventListener('click', () => document.getElementById('help').close());
  document.getElementById('confirm-ok').addEventListener('click', () => document.getElementById('confirm').close('ok'));
  document.getElementById('confirm-cancel').addEventListener('click', () => document.getElementById('confirm').close('cancel'));
  showTheme();
  installKeys({ search: focusSearch, help: openHelp, theme: cycleTheme });
  const live = document.getElementById('live');
  onLiveState((s) => {
    live.dataset.state = s;
    live.textContent = s === 'live' ? 'Live' : s === 'offline' ? 'Polling' : 'Connecting';
    live.title = s === 'live'
      ? 'Receiving job events as they happen'
      : s === 'offline'
        ? 'The event stream is not reachable; pages refresh on a timer'
        : 'Connecting to the event stream';
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
