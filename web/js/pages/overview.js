// Overview: every queue with its depth by state, paused or not and its oldest waiting job;
// throughput and latency charts from GET /v1/stats (refreshed every second); connected workers
// and what they run; the latest job events. Queue counts refresh on the live event stream (at
// most twice a second) and on a slow timer, so the page stays right when the stream is down.

import { get } from '../api.js';
import { lineChart } from '../charts.js';
import { h, messageRow, replace, setText, stateBadge, syncRows, throttle } from '../dom.js';
import { fmtDuration, fmtNum, fmtRate, fmtRel, fmtTime, shortId } from '../format.js';
import { subscribe } from '../live.js';
import { seesEveryNamespace } from '../session.js';

const COUNT_STATES = ['available', 'scheduled', 'running', 'retryable', 'pending', 'completed', 'dead', 'cancelled'];
const MAX_EVENTS = 12;

// GET /v1/stats may be missing on an older server: then the charts stay empty and the page
// asks again now and then rather than every second.
let statsMissingUntil = 0;

export function mount(root) {
  const tile = (key, label, hint) => {
    const value = h('span', { class: 'tile-value', text: '—' });
    const el = h('div', { class: 'tile', dataset: { tile: key } }, h('span', { class: 'tile-label', text: label }), value,
      h('span', { class: 'tile-hint', text: hint }));
    return { el, value };
  };
  const tiles = {
    available: tile('available', 'Available', 'ready to run'),
    running: tile('running', 'Running', 'leased by workers'),
    waiting: tile('waiting', 'Waiting', 'scheduled, retryable, pending'),
    dead: tile('dead', 'Dead', 'need attention'),
    throughput: tile('throughput', 'Completed / s', 'last 10 s'),
    latency: tile('latency', 'Queue wait p95', 'last 10 s'),
  };

  const thrBox = h('div', { class: 'chart', id: 'chart-throughput' });
  const latBox = h('div', { class: 'chart', id: 'chart-latency' });
  const statsNote = h('p', { class: 'chart-note muted', text: '' });

  const queueBody = h('tbody', {}, messageRow(COUNT_STATES.length + 3, 'Loading…', 'loading'));
  const queueTable = h('table', { class: 'data queues-overview', id: 'queues-table' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'name', text: 'Queue' }),
      h('th', { scope: 'col', class: 'status', text: 'Status' }),
      COUNT_STATES.map((s) => h('th', { scope: 'col', class: 'num', text: s })),
      h('th', { scope: 'col', class: 'num age', text: 'Oldest waiting' }),
    )),
    queueBody);

  const workerBody = h('tbody', {}, messageRow(4, 'Loading…', 'loading'));
  const workerTable = h('table', { class: 'data workers', id: 'workers-table' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Worker' }),
      h('th', { scope: 'col', text: 'Queues' }),
      h('th', { scope: 'col', class: 'num', text: 'Running' }),
      h('th', { scope: 'col', class: 'num', text: 'Last seen' }),
    )),
    workerBody);

  const eventList = h('ol', { class: 'events', id: 'recent-events' },
    h('li', { class: 'empty', text: 'Waiting for job events…' }));
  const updated = h('span', { class: 'muted updated', id: 'overview-updated', text: '' });

  root.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Overview' }), updated),
    h('section', { class: 'tiles', 'aria-label': 'Totals' }, Object.values(tiles).map((t) => t.el)),
    h('section', { class: 'charts' },
      h('div', { class: 'panel' }, h('h2', { text: 'Throughput (jobs per second)' }), thrBox),
      h('div', { class: 'panel' }, h('h2', { text: 'Latency (ms)' }), latBox),
      statsNote),
    h('section', { class: 'panel' }, h('h2', { text: 'Queues' }), h('div', { class: 'scroll-x' }, queueTable)),
    h('div', { class: 'split' },
      h('section', { class: 'panel' }, h('h2', { text: 'Workers (seen in the last minute)' }), workerTable),
      h('section', { class: 'panel' }, h('h2', { text: 'Latest job events' }), eventList)),
  );

  const throughput = lineChart(thrBox, {
    series: [
      { label: 'enqueued', color: '--c-enqueued' },
      { label: 'completed', color: '--c-completed' },
      { label: 'failed', color: '--c-retryable' },
      { label: 'dead', color: '--c-dead' },
    ],
    fmt: (v) => fmtRate(v),
  });
  const latency = lineChart(latBox, {
    series: [
      { label: 'wait avg', color: '--c-available' },
      { label: 'wait p95', color: '--c-scheduled' },
      { label: 'run avg', color: '--c-running' },
    ],
    fmt: (v) => fmtNum(Math.round(v)),
    // Latency exists only for seconds in which jobs started or finished.
    points: true,
  });

  let alive = true;
  let queuesBusy = false;
  let statsBusy = false;
  const recent = [];

  async function loadQueues() {
    if (queuesBusy || !alive) return;
    queuesBusy = true;
    try {
      const [q, w] = await Promise.all([get('/v1/queues'), get('/v1/workers')]);
      if (!alive) return;
      renderQueues(q.queues);
      renderWorkers(w.workers);
      setText(updated, `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (alive) setText(updated, `Could not refresh: ${e.message}`);
    } finally {
      queuesBusy = false;
    }
  }

  function renderQueues(queues) {
    const total = Object.fromEntries(COUNT_STATES.map((s) => [s, 0]));
    for (const q of queues) for (const s of COUNT_STATES) total[s] += q.counts[s] || 0;
    setText(tiles.available.value, fmtNum(total.available));
    setText(tiles.running.value, fmtNum(total.running));
    setText(tiles.waiting.value, fmtNum(total.scheduled + total.retryable + total.pending));
    setText(tiles.dead.value, fmtNum(total.dead));
    tiles.dead.el.classList.toggle('alert', total.dead > 0);
    if (!queues.length) {
      replace(queueBody, messageRow(COUNT_STATES.length + 3, 'No queues yet: enqueue a job and its queue appears here.'));
      return;
    }
    syncRows(queueBody, queues, (q) => q.name, (q) => {
      const cells = COUNT_STATES.map((s) => h('td', { class: 'num', dataset: { state: s } },
        h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}`, 'aria-label': `${s} jobs of ${q.name}` })));
      return h('tr', { dataset: { queue: q.name } },
        h('th', { scope: 'row', class: 'name' }, h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}`, text: q.name })),
        h('td', { class: 'status' }),
        cells,
        h('td', { class: 'num age' }));
    }, (row, q) => {
      const status = row.querySelector('td.status');
      const want = q.paused ? 'paused' : 'active';
      if (status.dataset.value !== want) {
        status.dataset.value = want;
        replace(status, q.paused ? h('span', { class: 'badge paused', text: 'paused' }) : h('span', { class: 'badge ok', text: 'active' }));
      }
      for (const s of COUNT_STATES) {
        const cell = row.querySelector(`td[data-state="${s}"]`);
        const n = q.counts[s] || 0;
        setText(cell.firstChild, fmtNum(n));
        cell.classList.toggle('zero', n === 0);
      }
      setText(row.querySelector('td.age'), q.oldest_available_age_ms === null ? '—' : fmtDuration(q.oldest_available_age_ms));
    });
  }

  function renderWorkers(workers) {
    if (!workers.length) {
      replace(workerBody, messageRow(4, 'No worker asked for jobs in the last minute.'));
      return;
    }
    syncRows(workerBody, workers, (w) => w.id, (w) => h('tr', { dataset: { worker: w.id } },
      h('td', { class: 'mono' }, w.id), h('td', { class: 'wq' }), h('td', { class: 'num wr' }), h('td', { class: 'num ws' })),
    (row, w) => {
      setText(row.querySelector('.wq'), w.queues.join(', '));
      setText(row.querySelector('.wr'), fmtNum(w.running));
      const seen = row.querySelector('.ws');
      setText(seen, fmtRel(w.last_seen_at));
      seen.title = fmtTime(w.last_seen_at);
    });
  }

  async function loadStats() {
    if (statsBusy || !alive || Date.now() < statsMissingUntil || document.hidden) return;
    if (!seesEveryNamespace()) {
      // The node's activity spans every namespace: a key scoped to some may not read it.
      setText(statsNote, 'Throughput charts need a key that sees every namespace.');
      return;
    }
    statsBusy = true;
    try {
      const s = await get('/v1/stats');
      if (!alive) return;
      renderStats(s);
    } catch (e) {
      if (!alive) return;
      if (e.status === 404) {
        statsMissingUntil = Date.now() + 30_000;
        setText(statsNote, 'This server does not report throughput yet (no /v1/stats).');
      } else {
        setText(statsNote, `Could not read statistics: ${e.message}`);
      }
    } finally {
      statsBusy = false;
    }
  }

  function renderStats(s) {
    const series = Array.isArray(s.series) ? s.series : [];
    const perSec = 1000 / (s.bucket_ms || 1000);
    const xs = series.map((b) => Date.parse(b.at) / 1000);
    const col = (k, scale = 1) => series.map((b) => (b[k] === null || b[k] === undefined ? null : b[k] * scale));
    throughput.setData(xs, [col('enqueued', perSec), col('completed', perSec), col('failed', perSec), col('dead', perSec)]);
    latency.setData(xs, [col('queue_latency_ms_avg'), col('queue_latency_ms_p95'), col('run_time_ms_avg')]);
    const last = series.slice(-10);
    const done = last.reduce((a, b) => a + (b.completed || 0), 0);
    setText(tiles.throughput.value, last.length ? fmtRate((done * perSec) / last.length) : '—');
    const p95 = last.map((b) => b.queue_latency_ms_p95).filter((v) => typeof v === 'number');
    setText(tiles.latency.value, p95.length ? fmtDuration(Math.max(...p95)) : '—');
    setText(statsNote, '');
  }

  function addEvent(ev) {
    recent.unshift(ev);
    recent.length = Math.min(recent.length, MAX_EVENTS);
    renderEvents();
  }

  function renderEvents() {
    if (!recent.length) return;
    replace(eventList, recent.map((ev) => h('li', { dataset: { seq: ev.seq } },
      h('time', { class: 'num', datetime: ev.at, title: fmtTime(ev.at), text: fmtRel(ev.at) }),
      h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(ev.job_id)}`, title: ev.job_id, text: shortId(ev.job_id) }),
      h('span', { class: 'ev-kind', text: `${ev.kind} · ${ev.queue}` }),
      h('span', { class: 'ev-move' }, ev.from ? stateBadge(ev.from) : null, ev.from ? ' → ' : null, stateBadge(ev.to)))));
  }

  const refreshSoon = throttle(loadQueues, 500);
  const unsubscribe = subscribe((ev) => {
    if (ev.type !== 'gap' && ev.job_id) addEvent(ev);
    refreshSoon();
  });
  const statsTimer = setInterval(loadStats, 1000);
  const slowTimer = setInterval(() => {
    loadQueues();
    // Relative times ("3 s ago") age even when nothing happens.
    for (const t of eventList.querySelectorAll('time')) setText(t, fmtRel(t.getAttribute('datetime')));
  }, 5000);
  loadQueues();
  loadStats();

  return {
    title: 'Overview',
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(statsTimer);
      clearInterval(slowTimer);
      throughput.destroy();
      latency.destroy();
    },
    keys: {
      r: ['Refresh now', () => { loadQueues(); loadStats(); }],
    },
  };
}
