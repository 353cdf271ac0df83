// Workflows: the runs of GET /v1/workflows, newest first, filtered by state and paged by
// cursor (the filter and the page live in the URL fragment); each row opens its run. Below, the
// named definitions (GET /v1/workflows/definitions) with their cron and next fire, when there
// are any. Refreshes when job events arrive (a step moving changes a run's counts; at most
// once a second), and every 10 s when the event stream is down.

import { get, qs } from '../api.js';
import { h, messageRow, replace, setText, stateBadge, throttle } from '../dom.js';
import { fmtNum, fmtRel, fmtTime, shortId } from '../format.js';
import { isLive, subscribe } from '../live.js';

const PAGE = 50;
const COLS = 6;
/** Every run state. */
export const RUN_STATES = ['running', 'completed', 'failed', 'cancelled'];

/** A run's label: its name, else the end of its id. */
export function runLabel(w) {
  return w.name || `Run ${shortId(w.id)}`;
}

/** A time cell: relative, the exact time on hover; a dash when there is none. */
function timeCell(iso) {
  return iso
    ? h('td', { class: 'num' }, h('time', { datetime: iso, title: fmtTime(iso) }, fmtRel(iso)))
    : h('td', { class: 'num muted', text: '—' });
}

export function mount(root, { params }) {
  let current = new URLSearchParams(params);
  let runs = [];
  let nextCursor = null;
  let pastCursors = []; // cursors of the pages before this one, for "newer"
  let active = -1; // row under the keyboard cursor
  let alive = true;
  let seq = 0;

  const stateSel = h('select', { id: 'workflows-state', name: 'state' }, h('option', { value: '', text: 'any' }),
    RUN_STATES.map((s) => h('option', { value: s, text: s })));
  const updated = h('span', { class: 'muted updated', text: '' });
  const tbody = h('tbody', {}, messageRow(COLS, 'Loading…', 'loading'));
  const table = h('table', { class: 'data workflows', id: 'workflows-table' },
    h('thead', {}, h('tr', {},
      [['Run'], ['State'], ['Steps done', 'num'], ['Failed', 'num'], ['Created', 'num'], ['Finished', 'num']]
        .map(([t, cls]) => h('th', { scope: 'col', class: cls, text: t })))),
    tbody);
  const newer = h('button', { type: 'button', id: 'workflows-newer', text: '← Newer', on: { click: () => pageNewer() } });
  const older = h('button', { type: 'button', id: 'workflows-older', text: 'Older →', on: { click: () => pageOlder() } });
  const pageInfo = h('span', { class: 'page-info num', text: '' });

  const defsBody = h('tbody');
  const defsPanel = h('section', { class: 'panel', id: 'workflow-definitions', hidden: true },
    h('h2', { text: 'Definitions' }),
    h('div', { class: 'scroll-x' }, h('table', { class: 'data definitions', id: 'definitions-table' },
      h('thead', {}, h('tr', {}, [['Definition'], ['Steps', 'num'], ['Cron'], ['Next fire', 'num']]
        .map(([t, cls]) => h('th', { scope: 'col', class: cls, text: t })))),
      defsBody)));

  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Workflows' }),
      h('label', { class: 'inline-field' }, h('span', { text: 'State' }), stateSel), updated),
    h('section', { class: 'panel runs-panel' },
      h('h2', { text: 'Runs' }),
      h('div', { class: 'scroll-x' }, table),
      h('div', { class: 'pager' }, newer, pageInfo, older)),
    defsPanel);

  stateSel.addEventListener('change', () => {
    pastCursors = [];
    go({ state: stateSel.value });
  });

  function go(filters) {
    const hash = `#/workflows${qs(filters)}`;
    if (location.hash === hash) load();
    else location.hash = hash;
  }

  async function load() {
    const mySeq = ++seq;
    const cursor = current.get('cursor') || '';
    const state = current.get('state') || '';
    stateSel.value = state;
    try {
      const page = await get(`/v1/workflows${qs({ limit: PAGE, state, cursor })}`);
      if (!alive || mySeq !== seq) return;
      runs = page.workflows;
      nextCursor = page.next_cursor;
      active = Math.min(active, runs.length - 1);
      render();
      setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (!alive || mySeq !== seq) return;
      runs = [];
      nextCursor = null;
      replace(tbody, messageRow(COLS, e.field ? `${e.message} (${e.field})` : e.message, 'error'));
      setText(updated, `Could not refresh: ${e.message}`);
    }
    newer.disabled = !cursor;
    older.disabled = !nextCursor;
    setText(pageInfo, `Page ${pastCursors.length + 1}${runs.length ? ` · ${fmtNum(runs.length)} runs` : ''}`);
  }

  function render() {
    if (!runs.length) {
      replace(tbody, messageRow(COLS, current.get('state')
        ? `No ${current.get('state')} runs.`
        : 'No workflow runs yet. Submit one with POST /v1/workflows, or trigger a definition.'));
      return;
    }
    // Rebuilt on each refresh; the focused row link is found again by run id.
    const focusedId = document.activeElement && tbody.contains(document.activeElement)
      ? document.activeElement.closest('tr')?.dataset.id : null;
    replace(tbody, runs.map((w, i) => {
      const done = w.steps - w.open_steps;
      return h('tr', { dataset: { id: w.id, state: w.state }, class: i === active ? 'active' : '' },
        h('td', { class: 'run-name' },
          h('a', { href: `#/workflows/${encodeURIComponent(w.id)}`, class: 'run-link', title: w.id, text: runLabel(w) }),
          w.logical_date ? h('span', { class: 'muted', text: ` ${w.logical_date}` }) : null),
        h('td', {}, stateBadge(w.state), w.cancel_requested && w.state === 'running' ? h('span', { class: 'badge warn', text: 'cancel asked' }) : null),
        h('td', { class: 'num steps-done', title: `${fmtNum(w.open_steps)} open` }, `${fmtNum(done)} / ${fmtNum(w.steps)}`),
        h('td', { class: `num failed-steps${w.failed_steps ? ' failed' : ' muted'}`, text: fmtNum(w.failed_steps) }),
        timeCell(w.created_at),
        timeCell(w.finished_at));
    }));
    if (focusedId) {
      const link = tbody.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a.run-link`);
      if (link) link.focus();
    }
  }

  async function loadDefinitions() {
    try {
      const answer = await get('/v1/workflows/definitions');
      if (!alive) return;
      const defs = answer.definitions;
      defsPanel.hidden = !defs.length;
      replace(defsBody, defs.map((d) => h('tr', { dataset: { definition: d.name } },
        h('th', { scope: 'row', class: 'mono', text: d.name }),
        h('td', { class: 'num', text: fmtNum(d.steps.length) }),
        h('td', {}, d.cron
          ? [h('code', { text: d.cron }), h('span', { class: 'muted', text: ` ${d.timezone}` })]
          : h('span', { class: 'muted', text: 'on demand' })),
        h('td', { class: 'num' }, d.next_fire_at
          ? h('time', { datetime: d.next_fire_at, title: fmtRel(d.next_fire_at) }, `${fmtTime(d.next_fire_at)} (${fmtRel(d.next_fire_at)})`)
          : h('span', { class: 'muted', text: d.cron ? '—' : 'never' })))));
    } catch {
      // A server without definitions (or one that failed to answer) leaves the section hidden.
      if (alive) defsPanel.hidden = true;
    }
  }

  function pageOlder() {
    if (!nextCursor) return;
    pastCursors.push(current.get('cursor') || '');
    go({ state: current.get('state'), cursor: nextCursor });
  }

  function pageNewer() {
    if (!current.get('cursor')) return;
    const prev = pastCursors.pop() || '';
    go({ state: current.get('state'), cursor: prev });
  }

  function move(to) {
    if (!runs.length) return;
    active = Math.max(0, Math.min(runs.length - 1, to));
    const rows = tbody.querySelectorAll('tr');
    rows.forEach((r, i) => r.classList.toggle('active', i === active));
    const row = rows[active];
    if (row) {
      row.querySelector('a.run-link').focus();
      row.scrollIntoView({ block: 'nearest' });
    }
  }

  // Any step moving may change a run's counts or state: refetch, at most once a second.
  const refresh = throttle(load, 1000);
  const unsubscribe = subscribe(() => refresh());
  // Without the stream, poll; definitions' next fire times move on by themselves.
  const timer = setInterval(() => {
    if (document.hidden) return;
    if (!isLive()) load();
    loadDefinitions();
  }, 10_000);
  load();
  loadDefinitions();

  return {
    title: 'Workflows',
    update(p) {
      current = new URLSearchParams(p);
      if (!current.get('cursor')) pastCursors = [];
      active = -1;
      load();
    },
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(timer);
    },
    keys: {
      j: ['Next run', () => move(active + 1)],
      k: ['Previous run', () => move(active - 1)],
      Enter: ['Open the run', () => { if (runs[active]) location.hash = `#/workflows/${encodeURIComponent(runs[active].id)}`; }],
      n: ['Older page', () => pageOlder()],
      p: ['Newer page', () => pageNewer()],
      r: ['Refresh', () => { load(); loadDefinitions(); }],
    },
  };
}
