// The audit log: who did what administrative thing, when, and what changed (admins only),
// newest first, a page at a time.

import { get, qs } from '../api.js';
import { h, messageRow, replace, setText } from '../dom.js';
import { fmtRel, fmtTime } from '../format.js';

export function mount(root) {
  let alive = true;
  let cursor = null;
  const tbody = h('tbody', {}, messageRow(6, 'Loading…', 'loading'));
  const status = h('span', { class: 'muted updated', text: '' });
  const more = h('button', { type: 'button', id: 'audit-more', hidden: true, text: 'Older entries' });
  more.addEventListener('click', () => load(true));
  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Audit log' }), status),
    h('div', { class: 'scroll-x' }, h('table', { class: 'data audit', id: 'audit-table' },
      h('thead', {}, h('tr', {},
        ['When', 'Who', 'Action', 'Namespace', 'Target', 'Change'].map((t) => h('th', { scope: 'col', text: t })))),
      tbody)),
    more);

  function row(e) {
    return h('tr', { dataset: { seq: String(e.seq), action: e.action } },
      h('td', { class: 'num' }, h('time', { datetime: e.at, title: fmtTime(e.at) }, fmtRel(e.at))),
      h('td', { class: 'mono actor', text: e.actor }),
      h('td', { class: 'action', text: e.action }),
      h('td', { text: e.namespace || '—' }),
      h('td', { class: 'mono target', text: e.target || '—' }),
      h('td', { class: 'mono details', text: JSON.stringify(e.details) }));
  }

  async function load(older = false) {
    try {
      const answer = await get(`/v1/audit${qs({ limit: 100, cursor: older ? cursor : null })}`);
      if (!alive) return;
      const rows = answer.entries.map(row);
      if (older) tbody.append(...rows);
      else replace(tbody, rows.length ? rows : messageRow(6, 'Nothing recorded yet.'));
      cursor = answer.next_cursor;
      more.hidden = !cursor;
      setText(status, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (!alive) return;
      if (e.status === 403) replace(tbody, messageRow(6, 'Only admin keys may read the audit log.'));
      else setText(status, `Could not load: ${e.message}`);
    }
  }
  load();

  return {
    title: 'Audit log',
    unmount() { alive = false; },
  };
}
