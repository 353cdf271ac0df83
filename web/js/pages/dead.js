// Dead letters: dead jobs grouped by queue and last error (GET /v1/dead-letters), newest group
// first; retry one job, retry every job of a group, or purge a group. Refreshes when jobs die
// or leave the dead state (live stream, at most once a second).

import { get, post, qs, seg } from '../api.js';
import { confirmDialog, h, replace, setText, throttle, toast } from '../dom.js';
import { fmtNum, fmtRel, fmtTime, shortId } from '../format.js';
import { subscribe } from '../live.js';

export function mount(root, { params }) {
  let current = new URLSearchParams(params);
  let alive = true;
  let seq = 0;

  const queueSel = h('select', { id: 'dead-queue', name: 'queue' }, h('option', { value: '', text: 'every queue' }));
  const summary = h('p', { class: 'muted summary-line', id: 'dead-summary', text: 'Loading…' });
  const list = h('ol', { class: 'groups', id: 'dead-groups' });

  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Dead letters' }),
      h('label', { class: 'inline-field' }, h('span', { text: 'Queue' }), queueSel)),
    summary, list);

  queueSel.addEventListener('change', () => {
    location.hash = `#/dead${qs({ queue: queueSel.value })}`;
  });

  async function load() {
    const mySeq = ++seq;
    try {
      const [answer, queues] = await Promise.all([
        get(`/v1/dead-letters${qs({ queue: current.get('queue') })}`),
        get('/v1/queues'),
      ]);
      if (!alive || mySeq !== seq) return;
      fillQueues(queues.queues);
      render(answer);
    } catch (e) {
      if (!alive || mySeq !== seq) return;
      setText(summary, `Could not load dead letters: ${e.message}`);
    }
  }

  function fillQueues(queues) {
    const want = current.get('queue') || '';
    const names = new Set(queues.filter((q) => q.counts.dead > 0 || q.name === want).map((q) => q.name));
    if (want) names.add(want);
    const have = [...queueSel.options].slice(1).map((o) => o.value);
    const next = [...names].sort();
    if (have.join('\n') !== next.join('\n')) {
      replace(queueSel, h('option', { value: '', text: 'every queue' }), next.map((n) => h('option', { value: n, text: n })));
    }
    queueSel.value = want;
  }

  function render(answer) {
    const total = answer.groups.reduce((a, g) => a + g.count, 0);
    let text = answer.groups.length
      ? `${fmtNum(total)} dead job${total === 1 ? '' : 's'} in ${fmtNum(answer.total_groups)} group${answer.total_groups === 1 ? '' : 's'}, newest first.`
      : 'No dead jobs. Jobs land here when they fail for good.';
    if (answer.total_groups > answer.groups.length) text += ` Showing the newest ${fmtNum(answer.groups.length)} groups.`;
    if (answer.truncated) text += ` Only the newest ${fmtNum(answer.scanned)} dead jobs were read; older ones are not counted.`;
    setText(summary, text);

    // Keep the focused control across a refresh: find it again by group and role.
    const focused = document.activeElement && list.contains(document.activeElement)
      ? [document.activeElement.closest('li.group')?.dataset.key, document.activeElement.dataset.role, document.activeElement.dataset.id]
      : null;
    replace(list, answer.groups.map((g, i) => group(g, i)));
    if (focused) {
      const li = [...list.children].find((el) => el.dataset.key === focused[0]);
      const sel = focused[2] ? `[data-role="${focused[1]}"][data-id="${focused[2]}"]` : `[data-role="${focused[1]}"]`;
      const el = li && li.querySelector(sel);
      if (el) el.focus();
    }
  }

  function group(g, i) {
    const key = `${g.queue}\n${g.error}`;
    const headingId = `dead-group-${i}`;
    return h('li', { class: 'group panel', dataset: { key, queue: g.queue }, 'aria-labelledby': headingId },
      h('div', { class: 'group-head' },
        h('h2', { id: headingId },
          h('span', { class: 'count num', text: fmtNum(g.count) }), ' dead in ',
          h('a', { href: `#/jobs?queue=${encodeURIComponent(g.queue)}&state=dead`, text: g.queue })),
        h('span', { class: 'muted num', title: fmtTime(g.latest_at), text: `latest ${fmtRel(g.latest_at)}` }),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'primary', dataset: { role: 'retry-group' }, on: { click: () => retryGroup(g) } },
            `Retry all ${fmtNum(g.count)}`),
          h('button', { type: 'button', class: 'danger', dataset: { role: 'purge-group' }, on: { click: () => purgeGroup(g) } },
            `Purge ${fmtNum(g.count)}`))),
      h('pre', { class: 'error-message', text: g.error || '(no error message recorded)' }),
      h('ul', { class: 'samples', 'aria-label': 'Newest jobs of the group' }, g.job_ids.map((id) => h('li', {},
        h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(id)}`, title: id, text: shortId(id) }),
        h('button', { type: 'button', class: 'small', dataset: { role: 'retry-one', id }, 'aria-label': `Retry job ${id}`, on: { click: () => retryOne(id) } }, 'Retry')))),
      g.count > g.job_ids.length ? h('p', { class: 'muted more', text: `and ${fmtNum(g.count - g.job_ids.length)} more` }) : null);
  }

  async function retryOne(id) {
    try {
      const j = await post(`/v1/jobs/${seg(id)}/retry`, {});
      toast(`Job ${shortId(id)} retried: ${j.state}`, 'ok');
    } catch (e) {
      toast(`Retry failed: ${e.message}`, 'error');
    }
    load();
  }

  async function retryGroup(g) {
    const ok = await confirmDialog(`Retry ${fmtNum(g.count)} dead jobs of ${g.queue}?`,
      `Every dead job of ${g.queue} whose last error is this message runs again from attempt 1.`, 'Retry all');
    if (!ok) return;
    try {
      const r = await post('/v1/dead-letters/retry', { queue: g.queue, error: g.error });
      toast(`${fmtNum(r.retried)} jobs retried${r.truncated ? ' (more remain: retry again)' : ''}`, 'ok');
    } catch (e) {
      toast(`Retry failed: ${e.message}`, 'error');
    }
    load();
  }

  async function purgeGroup(g) {
    const ok = await confirmDialog(`Purge ${fmtNum(g.count)} dead jobs of ${g.queue}?`,
      'They are deleted for good, with their events.', 'Purge', true);
    if (!ok) return;
    try {
      const r = await post('/v1/dead-letters/purge', { queue: g.queue, error: g.error });
      toast(`${fmtNum(r.purged)} jobs purged${r.truncated ? ' (more remain: purge again)' : ''}`, 'ok');
    } catch (e) {
      toast(`Purge failed: ${e.message}`, 'error');
    }
    load();
  }

  const refresh = throttle(load, 1000);
  const unsubscribe = subscribe((ev) => {
    if (ev.type === 'gap' || ev.to === 'dead' || ev.from === 'dead') refresh();
  });
  const timer = setInterval(() => { if (!document.hidden) load(); }, 15_000);
  load();

  return {
    title: 'Dead letters',
    update(p) {
      current = new URLSearchParams(p);
      load();
    },
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(timer);
    },
    keys: {
      r: ['Refresh', () => load()],
    },
  };
}
