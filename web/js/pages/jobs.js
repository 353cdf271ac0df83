// Jobs: filter by queue, state, kind, tag and free text (`q`), newest first, paged by cursor;
// select rows and retry, cancel or delete them in one call (POST /v1/jobs/bulk). The filters
// live in the URL fragment, so a filtered list is a link.

import { STATES, get, post, qs } from '../api.js';
import { confirmDialog, h, messageRow, replace, setText, stateBadge, toast } from '../dom.js';
import { fmtNum, fmtRel, fmtTime, shortId } from '../format.js';

const PAGE = 50;
const FILTERS = ['queue', 'state', 'kind', 'tag', 'q'];
const COLS = 9;

/** The time worth showing for a job in its state, and what it means. */
function when(job) {
  switch (job.state) {
    case 'completed':
    case 'dead':
    case 'cancelled':
      return ['finished', job.finished_at];
    case 'running':
      return ['started', job.started_at];
    default:
      return ['runs', job.available_at];
  }
}

export function mount(root, { params }) {
  let current = new URLSearchParams(params);
  let jobs = [];
  let nextCursor = null;
  let pastCursors = []; // cursors of the pages before this one, for "newer"
  const selected = new Set();
  let active = -1; // row under the keyboard cursor
  let alive = true;
  let seq = 0;

  const field = (name, label, input) => h('label', { class: `field field-${name}` }, h('span', { text: label }), input);
  const queueSel = h('select', { name: 'queue', id: 'filter-queue' }, h('option', { value: '', text: 'any' }));
  const stateSel = h('select', { name: 'state', id: 'filter-state' }, h('option', { value: '', text: 'any' }),
    STATES.map((s) => h('option', { value: s, text: s })));
  const kindIn = h('input', { name: 'kind', id: 'filter-kind', autocomplete: 'off', spellcheck: 'false' });
  const tagIn = h('input', { name: 'tag', id: 'filter-tag', autocomplete: 'off', spellcheck: 'false' });
  const searchIn = h('input', {
    name: 'q', id: 'search', type: 'search', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'kind, id or tag', 'aria-keyshortcuts': '/',
  });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs' },
    field('queue', 'Queue', queueSel), field('state', 'State', stateSel), field('kind', 'Kind', kindIn),
    field('tag', 'Tag', tagIn), field('q', 'Search', searchIn),
    h('div', { class: 'filter-buttons' },
      h('button', { type: 'submit', class: 'primary', text: 'Apply' }),
      h('button', { type: 'button', id: 'filter-clear', text: 'Clear', on: { click: () => go({}) } })));

  const selCount = h('span', { class: 'sel-count num', id: 'selected-count', text: '0 selected' });
  const bulkButtons = {
    retry: h('button', { type: 'button', id: 'bulk-retry', disabled: true, text: 'Retry', on: { click: () => bulk('retry') } }),
    cancel: h('button', { type: 'button', id: 'bulk-cancel', disabled: true, text: 'Cancel', on: { click: () => bulk('cancel') } }),
    delete: h('button', { type: 'button', id: 'bulk-delete', class: 'danger', disabled: true, text: 'Delete', on: { click: () => bulk('delete') } }),
  };
  const bulkStatus = h('span', { class: 'bulk-status', role: 'status', id: 'bulk-status' });
  const bulkBar = h('div', { class: 'bulkbar', 'aria-label': 'Actions on selected jobs' }, selCount,
    Object.values(bulkButtons), bulkStatus);

  const allBox = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every job on this page' });
  const tbody = h('tbody', {}, messageRow(COLS, 'Loading…', 'loading'));
  const table = h('table', { class: 'data jobs', id: 'jobs-table' },
    h('colgroup', {}, h('col', { class: 'c-sel' }), h('col', { class: 'c-id' }), h('col', { class: 'c-kind' }),
      h('col', { class: 'c-queue' }), h('col', { class: 'c-state' }), h('col', { class: 'c-attempt' }),
      h('col', { class: 'c-time' }), h('col', { class: 'c-time' }), h('col', { class: 'c-tags' })),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'sel' }, allBox),
      h('th', { scope: 'col', text: 'Job' }), h('th', { scope: 'col', text: 'Kind' }),
      h('th', { scope: 'col', text: 'Queue' }), h('th', { scope: 'col', text: 'State' }),
      h('th', { scope: 'col', class: 'num', text: 'Attempt' }), h('th', { scope: 'col', text: 'Created' }),
      h('th', { scope: 'col', text: 'Runs / ran' }), h('th', { scope: 'col', text: 'Tags' }))),
    tbody);

  const newer = h('button', { type: 'button', id: 'page-newer', text: '← Newer', on: { click: () => pageNewer() } });
  const older = h('button', { type: 'button', id: 'page-older', text: 'Older →', on: { click: () => pageOlder() } });
  const pageInfo = h('span', { class: 'page-info num', text: '' });

  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Jobs' }),
      h('span', { class: 'muted', text: 'Newest first. j/k move, x selects, Enter opens.' })),
    form, bulkBar,
    h('div', { class: 'scroll-x' }, table),
    h('div', { class: 'pager' }, newer, pageInfo, older));

  // Keep the form in step with the URL, without disturbing a field being typed in.
  function fillForm() {
    const set = (el, v) => {
      if (document.activeElement !== el && el.value !== v) el.value = v;
    };
    set(kindIn, current.get('kind') || '');
    set(tagIn, current.get('tag') || '');
    set(searchIn, current.get('q') || '');
    const q = current.get('queue') || '';
    if (q && ![...queueSel.options].some((o) => o.value === q)) queueSel.append(h('option', { value: q, text: q }));
    queueSel.value = q;
    stateSel.value = current.get('state') || '';
  }

  function formFilters() {
    return {
      queue: queueSel.value, state: stateSel.value, kind: kindIn.value.trim(),
      tag: tagIn.value.trim(), q: searchIn.value.trim(),
    };
  }

  function go(filters, { replaceEntry = false } = {}) {
    const hash = `#/jobs${qs(filters)}`;
    if (location.hash === hash) {
      load();
      return;
    }
    if (replaceEntry) location.replace(hash);
    else location.hash = hash;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    pastCursors = [];
    go(formFilters());
  });
  queueSel.addEventListener('change', () => { pastCursors = []; go(formFilters()); });
  stateSel.addEventListener('change', () => { pastCursors = []; go(formFilters()); });
  let typing = null;
  searchIn.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { pastCursors = []; go(formFilters(), { replaceEntry: true }); }, 350);
  });
  searchIn.addEventListener('keydown', (e) => {
    // Down from the search field goes to the results, as in a list box.
    if (e.key === 'ArrowDown' && jobs.length) {
      e.preventDefault();
      move(0, true);
    }
  });

  allBox.addEventListener('change', () => {
    for (const j of jobs) {
      if (allBox.checked) selected.add(j.id);
      else selected.delete(j.id);
    }
    renderSelection();
  });

  async function load() {
    const mySeq = ++seq;
    const filters = {};
    for (const k of FILTERS) if (current.get(k)) filters[k] = current.get(k);
    const cursor = current.get('cursor') || '';
    try {
      const page = await get(`/v1/jobs${qs({ ...filters, limit: PAGE, cursor })}`);
      if (!alive || mySeq !== seq) return;
      jobs = page.jobs;
      nextCursor = page.next_cursor;
      // Selection is per page: rows that left the page are no longer shown, so not acted on.
      const ids = new Set(jobs.map((j) => j.id));
      for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
      active = Math.min(active, jobs.length - 1);
      render();
    } catch (e) {
      if (!alive || mySeq !== seq) return;
      jobs = [];
      nextCursor = null;
      replace(tbody, messageRow(COLS, e.field ? `${e.message} (${e.field})` : e.message, 'error'));
      renderSelection();
    }
    newer.disabled = !cursor;
    older.disabled = !nextCursor;
    setText(pageInfo, `Page ${pastCursors.length + 1}${jobs.length ? ` · ${fmtNum(jobs.length)} jobs` : ''}`);
  }

  function render() {
    if (!jobs.length) {
      const filtered = FILTERS.some((k) => current.get(k));
      replace(tbody, messageRow(COLS, filtered ? 'No job matches these filters.' : 'No jobs yet.'));
      renderSelection();
      return;
    }
    replace(tbody, jobs.map((j, i) => {
      const [whenLabel, whenAt] = when(j);
      const box = h('input', {
        type: 'checkbox', class: 'row-select', checked: selected.has(j.id),
        'aria-label': `Select job ${j.id}`,
        on: {
          change: (e) => {
            if (e.target.checked) selected.add(j.id);
            else selected.delete(j.id);
            renderSelection();
          },
        },
      });
      return h('tr', { dataset: { id: j.id, state: j.state }, class: i === active ? 'active' : '' },
        h('td', { class: 'sel' }, box),
        h('td', { class: 'mono' }, h('a', { href: `#/jobs/${encodeURIComponent(j.id)}`, class: 'job-link', title: j.id, text: shortId(j.id) })),
        h('td', { class: 'kind', title: j.kind, text: j.kind }),
        h('td', { title: j.queue, text: j.queue }),
        h('td', {}, stateBadge(j.state), j.cancel_requested ? h('span', { class: 'badge warn', text: 'cancel asked' }) : null),
        h('td', { class: 'num', text: `${j.attempt}/${j.max_attempts}` }),
        h('td', { class: 'num', title: fmtTime(j.created_at), text: fmtRel(j.created_at) }),
        h('td', { class: 'num', title: `${whenLabel} ${fmtTime(whenAt)}`, text: whenAt ? fmtRel(whenAt) : '—' }),
        h('td', { class: 'tags' }, j.tags.map((t) => h('span', { class: 'tag', text: t }))));
    }));
    renderSelection();
  }

  function renderSelection() {
    const n = selected.size;
    setText(selCount, `${fmtNum(n)} selected`);
    for (const b of Object.values(bulkButtons)) b.disabled = n === 0;
    allBox.checked = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
    allBox.indeterminate = n > 0 && !allBox.checked;
  }

  async function bulk(action) {
    const ids = jobs.filter((j) => selected.has(j.id)).map((j) => j.id);
    if (!ids.length) return;
    const verb = { retry: 'Retry', cancel: 'Cancel', delete: 'Delete' }[action];
    if (action !== 'retry') {
      const ok = await confirmDialog(`${verb} ${ids.length} job${ids.length === 1 ? '' : 's'}?`,
        action === 'delete'
          ? 'Deleted jobs are gone for good. Only finished jobs can be deleted.'
          : 'Waiting jobs are cancelled at once; running ones are asked to stop.',
        verb, action === 'delete');
      if (!ok) return;
    }
    setText(bulkStatus, `${verb}ing ${ids.length}…`);
    try {
      const answer = await post('/v1/jobs/bulk', { action, ids });
      const failed = answer.results.filter((r) => !r.ok);
      const done = answer.results.length - failed.length;
      let msg = `${verb}: ${fmtNum(done)} done`;
      if (failed.length) {
        const first = failed[0];
        msg += `, ${fmtNum(failed.length)} refused (${shortId(first.id)}: ${first.error ? first.error.message : 'failed'})`;
      }
      setText(bulkStatus, msg);
      toast(msg, failed.length ? 'error' : 'ok');
      selected.clear();
    } catch (e) {
      setText(bulkStatus, `${verb} failed: ${e.message}`);
      toast(`${verb} failed: ${e.message}`, 'error');
    }
    load();
  }

  function pageOlder() {
    if (!nextCursor) return;
    pastCursors.push(current.get('cursor') || '');
    const f = Object.fromEntries(FILTERS.map((k) => [k, current.get(k)]));
    go({ ...f, cursor: nextCursor });
  }

  function pageNewer() {
    if (!current.get('cursor')) return;
    const prev = pastCursors.pop() || '';
    const f = Object.fromEntries(FILTERS.map((k) => [k, current.get(k)]));
    go({ ...f, cursor: prev });
  }

  function move(to, focus = true) {
    if (!jobs.length) return;
    active = Math.max(0, Math.min(jobs.length - 1, to));
    const rows = tbody.querySelectorAll('tr');
    rows.forEach((r, i) => r.classList.toggle('active', i === active));
    const row = rows[active];
    if (row && focus) {
      row.querySelector('a.job-link').focus();
      row.scrollIntoView({ block: 'nearest' });
    }
  }

  function toggleActive() {
    const j = jobs[active];
    if (!j) return;
    if (selected.has(j.id)) selected.delete(j.id);
    else selected.add(j.id);
    const box = tbody.querySelectorAll('tr')[active].querySelector('input.row-select');
    box.checked = selected.has(j.id);
    renderSelection();
  }

  // The queue list fills the queue filter; the list itself does not wait for it.
  get('/v1/queues').then((answer) => {
    if (!alive) return;
    for (const q of answer.queues) {
      if (![...queueSel.options].some((o) => o.value === q.name)) queueSel.append(h('option', { value: q.name, text: q.name }));
    }
    queueSel.value = current.get('queue') || '';
  }).catch(() => {});

  fillForm();
  load();

  return {
    title: 'Jobs',
    update(p) {
      current = new URLSearchParams(p);
      if (!current.get('cursor')) pastCursors = [];
      fillForm();
      load();
    },
    unmount() {
      alive = false;
      clearTimeout(typing);
    },
    keys: {
      j: ['Next job', () => move(active + 1)],
      k: ['Previous job', () => move(active - 1)],
      x: ['Select or unselect the job', () => toggleActive()],
      a: ['Select or unselect every job on the page', () => { allBox.checked = !allBox.checked; allBox.dispatchEvent(new Event('change')); }],
      Enter: ['Open the job', () => { if (jobs[active]) location.hash = `#/jobs/${encodeURIComponent(jobs[active].id)}`; }],
      R: ['Retry the selected jobs', () => bulk('retry')],
      C: ['Cancel the selected jobs', () => bulk('cancel')],
      D: ['Delete the selected jobs', () => bulk('delete')],
      n: ['Older page', () => pageOlder()],
      p: ['Newer page', () => pageNewer()],
      r: ['Refresh', () => load()],
    },
  };
}
