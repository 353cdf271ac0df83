// Queues: each queue's depth, whether it is paused, its lease order and limits; pause and
// resume in one keystroke-reachable button; a link to edit the limits. Refreshes on the live
// stream (at most twice a second) and every five seconds.

import { get, post, seg } from '../api.js';
import { h, messageRow, replace, setText, syncRows, throttle, toast } from '../dom.js';
import { fmtDuration, fmtNum } from '../format.js';
import { subscribe } from '../live.js';

/** The limits of a configuration in a few words: "20 at once · 100/1 s". */
export function limitsSummary(c) {
  const parts = [];
  if (c.concurrency) parts.push(`${fmtNum(c.concurrency)} at once`);
  if (c.key_concurrency) parts.push(`${fmtNum(c.key_concurrency)} per key`);
  if (c.rate) parts.push(`${fmtNum(c.rate.limit)} per ${fmtDuration(c.rate.period_ms)}`);
  if (c.key_rate) parts.push(`${fmtNum(c.key_rate.limit)} per ${fmtDuration(c.key_rate.period_ms)} per key`);
  return parts.length ? parts.join(' · ') : 'no limits';
}

export function mount(root) {
  let alive = true;
  const tbody = h('tbody', {}, messageRow(9, 'Loading…', 'loading'));
  const table = h('table', { class: 'data queues', id: 'queues-list' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Queue' }), h('th', { scope: 'col', text: 'Status' }),
      h('th', { scope: 'col', class: 'num', text: 'Available' }), h('th', { scope: 'col', class: 'num', text: 'Running' }),
      h('th', { scope: 'col', class: 'num', text: 'Dead' }), h('th', { scope: 'col', class: 'num', text: 'Oldest waiting' }),
      h('th', { scope: 'col', text: 'Order' }), h('th', { scope: 'col', text: 'Limits' }),
      h('th', { scope: 'col', text: 'Actions' }))),
    tbody);
  const updated = h('span', { class: 'muted updated', text: '' });
  root.append(h('div', { class: 'page-head' }, h('h1', { text: 'Queues' }), updated), h('div', { class: 'scroll-x' }, table));

  let busy = false;
  async function load() {
    if (busy || !alive) return;
    busy = true;
    try {
      const answer = await get('/v1/queues');
      if (alive) render(answer.queues);
    } catch (e) {
      if (alive) setText(updated, `Could not refresh: ${e.message}`);
    } finally {
      busy = false;
    }
  }

  function render(queues) {
    if (!queues.length) {
      replace(tbody, messageRow(9, 'No queues yet: a queue appears with its first job or configuration.'));
      return;
    }
    syncRows(tbody, queues, (q) => q.name, (q) => {
      const toggle = h('button', { type: 'button', class: 'pause-toggle', dataset: { role: 'pause' } });
      toggle.addEventListener('click', () => setPaused(q.name, toggle.dataset.paused !== 'true'));
      return h('tr', { dataset: { queue: q.name } },
        h('th', { scope: 'row' }, h('a', { href: `#/queues/${encodeURIComponent(q.name)}`, text: q.name })),
        h('td', { class: 'status' }),
        h('td', { class: 'num c-available' }), h('td', { class: 'num c-running' }), h('td', { class: 'num c-dead' }),
        h('td', { class: 'num c-age' }), h('td', { class: 'c-policy' }), h('td', { class: 'c-limits' }),
        h('td', { class: 'actions' }, toggle, ' ', h('a', { class: 'button', href: `#/queues/${encodeURIComponent(q.name)}`, text: 'Edit limits' })));
    }, (row, q) => {
      const status = row.querySelector('.status');
      if (status.dataset.value !== String(q.paused)) {
        status.dataset.value = String(q.paused);
        replace(status, h('span', { class: q.paused ? 'badge paused' : 'badge ok', text: q.paused ? 'paused' : 'active' }));
      }
      setText(row.querySelector('.c-available'), fmtNum(q.counts.available));
      setText(row.querySelector('.c-running'), fmtNum(q.counts.running));
      setText(row.querySelector('.c-dead'), fmtNum(q.counts.dead));
      setText(row.querySelector('.c-age'), q.oldest_available_age_ms === null ? '—' : fmtDuration(q.oldest_available_age_ms));
      setText(row.querySelector('.c-policy'), q.config.policy.replace('_', ' '));
      setText(row.querySelector('.c-limits'), limitsSummary(q.config));
      const toggle = row.querySelector('.pause-toggle');
      toggle.dataset.paused = String(q.paused);
      setText(toggle, q.paused ? 'Resume' : 'Pause');
      toggle.setAttribute('aria-label', `${q.paused ? 'Resume' : 'Pause'} queue ${q.name}`);
    });
    setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
  }

  async function setPaused(name, paused) {
    try {
      await post(`/v1/queues/${seg(name)}/${paused ? 'pause' : 'resume'}`, {});
      toast(`Queue ${name} ${paused ? 'paused' : 'resumed'}`, 'ok');
    } catch (e) {
      toast(`Could not ${paused ? 'pause' : 'resume'} ${name}: ${e.message}`, 'error');
    }
    load();
  }

  const refresh = throttle(load, 500);
  const unsubscribe = subscribe(() => refresh());
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  load();

  return {
    title: 'Queues',
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(timer);
    },
    keys: { r: ['Refresh', () => load()] },
  };
}
