// Keyboard shortcuts. Global ones (`g o`, `g j`, `g d`, `g q`, `g s`, `g w`, `/`, `?`, `t`) work on
// every page; the open page adds its own with setPageKeys. Keys typed into a field are left
// to the field (Escape leaves it). The help overlay (`?`) lists what is in force.

import { h, replace } from './dom.js';

const GO = {
  o: ['#/', 'Overview'],
  j: ['#/jobs', 'Jobs'],
  d: ['#/dead', 'Dead letters'],
  q: ['#/queues', 'Queues'],
  s: ['#/schedules', 'Schedules'],
  w: ['#/workflows', 'Workflows'],
};

let pageKeys = {};
let pending = null;
let pendingTimer = null;
let globalActions = {};

/**
 * Page shortcuts: `{key: [description, fn]}`, replaced on every page change. A key is the
 * KeyboardEvent `key` (`j`, `Enter`, `D` for shift+d).
 */
export function setPageKeys(keys) {
  pageKeys = keys || {};
}

/** Installs the handler; `actions` are `{search(), help(), theme()}`. */
export function installKeys(actions) {
  globalActions = actions;
  document.addEventListener('keydown', onKey);
}

function inField(el) {
  if (!el) return false;
  const tag = el.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable;
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return; // dialogs handle their own keys
  if (inField(e.target)) {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  if (pending === 'g') {
    clearPending();
    const go = GO[e.key];
    if (go) {
      e.preventDefault();
      location.hash = go[0];
    }
    return;
  }
  if (e.key === 'g') {
    pending = 'g';
    pendingTimer = setTimeout(clearPending, 1500);
    return;
  }
  if (e.key === '/') {
    e.preventDefault();
    globalActions.search();
    return;
  }
  if (e.key === '?') {
    e.preventDefault();
    globalActions.help();
    return;
  }
  if (e.key === 't') {
    e.preventDefault();
    globalActions.theme();
    return;
  }
  const own = pageKeys[e.key];
  // Enter on a focused control does what the control does, not the page's shortcut.
  if (own && !(e.key === 'Enter' && e.target.closest && e.target.closest('a, button'))) {
    e.preventDefault();
    own[1](e);
  }
}

function clearPending() {
  pending = null;
  clearTimeout(pendingTimer);
}

/** Fills the help dialog's list with the shortcuts in force. */
export function renderHelp(list) {
  const rows = [
    ['g o', 'Overview'],
    ['g j', 'Jobs'],
    ['g d', 'Dead letters'],
    ['g q', 'Queues'],
    ['g s', 'Schedules'],
    ['g w', 'Workflows'],
    ['/', 'Search jobs'],
    ['t', 'Switch theme (system, light, dark)'],
    ['?', 'This help'],
    ['Esc', 'Close a dialog, leave a field'],
  ];
  const page = Object.entries(pageKeys).map(([k, [desc]]) => [k === ' ' ? 'Space' : k, desc]);
  const section = (title, items) => [
    h('h3', { text: title }),
    h('dl', { class: 'keys' }, items.map(([k, d]) => [
      h('dt', {}, k.split(' ').map((part) => h('kbd', { text: part }))),
      h('dd', { text: d }),
    ])),
  ];
  replace(list, section('Everywhere', rows), page.length ? section('On this page', page) : null);
}
