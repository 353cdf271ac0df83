// Building DOM from elements and text nodes, never from HTML strings: every text that came
// from the server goes in as a text node, so a job's args or an error message can never inject
// markup.

import { fmtRel, fmtTime } from './format.js';

/**
 * Creates an element. `attrs` may hold `class`, `text`, `dataset` (object), `on` (event name →
 * listener), `style` is not supported on purpose (the page's policy forbids inline styles in
 * markup; use classes). Other keys become attributes; `false`/`null`/`undefined` skip them,
 * `true` sets an empty attribute. Children are nodes, strings, numbers, or arrays of those.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces every child of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Sets `el`'s text only when it changed, so unchanged cells cause no repaint. */
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

/**
 * Brings the rows of `tbody` in line with `items`, reusing the row of each key: a live update
 * then changes cells in place instead of rebuilding the table, so focus, selection and scroll
 * position survive it. `create(item)` makes a row, `update(row, item)` fills it.
 */
export function syncRows(tbody, items, key, create, update) {
  const old = new Map();
  for (const row of tbody.children) {
    if (row.dataset.key !== undefined) old.set(row.dataset.key, row);
  }
  let prev = null;
  for (const item of items) {
    const k = String(key(item));
    let row = old.get(k);
    if (row) old.delete(k);
    else {
      row = create(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
  // Whatever else is left (an empty-state row) goes too.
  if (prev) while (prev.nextSibling) prev.nextSibling.remove();
  else tbody.replaceChildren();
}

/** A table row spanning `cols` columns with a message, for empty and error states. */
export function messageRow(cols, message, cls = 'empty') {
  return h('tr', { class: cls }, h('td', { colspan: cols }, message));
}

/** Calls `fn` at most once per `ms`, and once more after the last call of a burst. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return function throttled() {
    const now = Date.now();
    const wait = last + ms - now;
    if (wait <= 0 && !timer) {
      last = now;
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, Math.max(wait, 0));
    }
  };
}

/** Shows a short message in the corner; it never moves the page's layout. */
export function toast(message, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  region.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
  while (region.children.length > 4) region.firstChild.remove();
}

/**
 * Asks the user to confirm, in the page's modal dialog (focus goes to the confirm button, so
 * Enter confirms and Escape cancels). Resolves true or false.
 */
export function confirmDialog(title, message, confirmLabel = 'Confirm', danger = false) {
  const dlg = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  replace(document.getElementById('confirm-title'), title);
  replace(document.getElementById('confirm-message'), message);
  ok.textContent = confirmLabel;
  ok.className = danger ? 'danger' : 'primary';
  return new Promise((resolve) => {
    const done = () => {
      dlg.removeEventListener('close', done);
      resolve(dlg.returnValue === 'ok');
    };
    dlg.returnValue = '';
    dlg.addEventListener('close', done);
    dlg.showModal();
    ok.focus();
  });
}

/** A state badge. */
export function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, text: state });
}

/** One `<dt>`/`<dd>` pair of a detail list; an empty value shows as a dash. */
export function fact(label, value, attrs = {}) {
  return [h('dt', { text: label }), h('dd', attrs, value === null || value === undefined || value === '' ? '—' : value)];
}

/** A fact holding a time: absolute, with the relative time as its tooltip. */
export function timeFact(label, iso) {
  return fact(label, iso ? h('time', { datetime: iso, title: fmtRel(iso) }, fmtTime(iso)) : null);
}
