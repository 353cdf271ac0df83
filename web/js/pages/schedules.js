// Schedules: every cron schedule with its next fire times and latest runs; pause, resume and
// trigger one now. Fire times are shown in the viewer's zone, with the schedule's own zone
// beside its expression.

import { get, post, seg } from '../api.js';
import { h, messageRow, replace, setText, toast } from '../dom.js';
import { fmtRel, fmtTime, shortId } from '../format.js';

export function mount(root) {
  let alive = true;
  const tbody = h('tbody', {}, messageRow(7, 'Loading…', 'loading'));
  const updated = h('span', { class: 'muted updated', text: '' });
  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Schedules' }), updated),
    h('div', { class: 'scroll-x' }, h('table', { class: 'data schedules', id: 'schedules-table' },
      h('thead', {}, h('tr', {},
        ['Schedule', 'When', 'Job', 'Status', 'Next fire', 'Last run', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      tbody)));

  async function load() {
    try {
      const answer = await get('/v1/schedules');
      if (!alive) return;
      render(answer.schedules);
      setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (alive) setText(updated, `Could not refresh: ${e.message}`);
    }
  }

  function render(schedules) {
    if (!schedules.length) {
      replace(tbody, messageRow(7, 'No schedules. Create one with POST /v1/schedules or `hopper schedules`.'));
      return;
    }
    const focusedRole = document.activeElement && tbody.contains(document.activeElement)
      ? [document.activeElement.closest('tr').dataset.schedule, document.activeElement.dataset.role] : null;
    replace(tbody, schedules.map((s) => {
      const last = s.last_runs[0];
      const next = s.next_fire_times;
      return h('tr', { dataset: { schedule: s.name } },
        h('th', { scope: 'row', class: 'mono', text: s.name }),
        h('td', {}, h('code', { text: s.cron }), h('span', { class: 'muted', text: ` ${s.timezone}` })),
        h('td', {}, h('span', { text: s.job.kind }), h('span', { class: 'muted', text: ` → ${s.job.queue || 'default'}` })),
        h('td', {}, h('span', { class: s.paused ? 'badge paused' : 'badge ok', text: s.paused ? 'paused' : 'active' })),
        h('td', { class: 'num next-fire' }, next.length
          ? [h('time', { datetime: next[0], title: next.map(fmtTime).join('\n') }, `${fmtTime(next[0])} (${fmtRel(next[0])})`),
            next.length > 1 ? h('span', { class: 'muted later', text: `then ${next.slice(1).map(fmtTime).join(' · ')}` }) : null]
          : h('span', { class: 'muted', text: s.paused ? 'paused' : '—' })),
        h('td', { class: 'num' }, last
          ? [h('time', { datetime: last.enqueued_at, title: fmtTime(last.enqueued_at) }, fmtRel(last.enqueued_at)), ' ',
            h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(last.job_id)}`, title: last.job_id, text: shortId(last.job_id) })]
          : h('span', { class: 'muted', text: 'never' })),
        h('td', { class: 'actions' },
          h('button', { type: 'button', dataset: { role: 'pause' }, 'aria-label': `${s.paused ? 'Resume' : 'Pause'} schedule ${s.name}`, on: { click: () => act(s.name, s.paused ? 'resume' : 'pause') } }, s.paused ? 'Resume' : 'Pause'),
          ' ',
          h('button', { type: 'button', dataset: { role: 'trigger' }, 'aria-label': `Run schedule ${s.name} now`, on: { click: () => act(s.name, 'trigger') } }, 'Run now')));
    }));
    if (focusedRole) {
      const el = tbody.querySelector(`tr[data-schedule="${CSS.escape(focusedRole[0])}"] [data-role="${focusedRole[1]}"]`);
      if (el) el.focus();
    }
  }

  async function act(name, action) {
    try {
      const answer = await post(`/v1/schedules/${seg(name)}/${action}`, {});
      toast(action === 'trigger' ? `Enqueued job ${shortId(answer.id)}` : `Schedule ${name} ${action}d`, 'ok');
    } catch (e) {
      toast(`Could not ${action} ${name}: ${e.message}`, 'error');
    }
    load();
  }

  // Fire times move on by themselves; a slow refresh keeps "next" true.
  const timer = setInterval(() => { if (!document.hidden) load(); }, 10_000);
  load();

  return {
    title: 'Schedules',
    unmount() {
      alive = false;
      clearInterval(timer);
    },
    keys: { r: ['Refresh', () => load()] },
  };
}
