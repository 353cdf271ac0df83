// One job: its fields, args, result and progress; every attempt with its error; the timeline
// of its events; why it waits (GET /v1/jobs/{id}/explain) while it does; retry, cancel and
// delete. A step of a workflow run links back to its run and names its step (a finished step
// is retried with its run, not alone). Refreshes when the live stream reports a change of this
// job (at most twice a second).

import { FINISHED, WAITING, del, get, post, seg } from '../api.js';
import { confirmDialog, fact, h, replace, stateBadge, throttle, timeFact, toast } from '../dom.js';
import { fmtDuration, fmtRel, fmtTime, prettyJson, shortId } from '../format.js';
import { subscribe } from '../live.js';

const RETRYABLE_FROM = ['dead', 'cancelled', 'completed', 'scheduled', 'retryable'];
const CANCELLABLE_FROM = ['pending', 'scheduled', 'available', 'retryable', 'running'];

export function mount(root, { args }) {
  const id = args[0];
  let job = null;
  let alive = true;
  let busy = false;
  let again = false;

  const title = h('h1', { class: 'job-title', text: 'Job' });
  const badge = h('span', { class: 'job-state', id: 'job-state' });
  const actions = {
    retry: h('button', { type: 'button', id: 'job-retry', disabled: true, 'aria-keyshortcuts': 'r', on: { click: () => act('retry') } }, 'Retry ', h('kbd', { text: 'r' })),
    cancel: h('button', { type: 'button', id: 'job-cancel', disabled: true, 'aria-keyshortcuts': 'c', on: { click: () => act('cancel') } }, 'Cancel ', h('kbd', { text: 'c' })),
    delete: h('button', { type: 'button', id: 'job-delete', class: 'danger', disabled: true, 'aria-keyshortcuts': 'Shift+D', on: { click: () => act('delete') } }, 'Delete ', h('kbd', { text: 'D' })),
  };
  const facts = h('dl', { class: 'facts', id: 'job-facts' });
  const explainBox = h('section', { class: 'panel explain', id: 'job-explain', hidden: true });
  const argsPre = h('pre', { class: 'json', id: 'job-args' });
  const resultPre = h('pre', { class: 'json', id: 'job-result' });
  const progressPre = h('pre', { class: 'json', id: 'job-progress' });
  const metaPre = h('pre', { class: 'json', id: 'job-meta' });
  const attemptsBody = h('tbody');
  const otherErrors = h('div', { id: 'job-other-errors' });
  const timeline = h('ol', { class: 'timeline', id: 'job-timeline' });
  const message = h('p', { class: 'notice', hidden: true });

  root.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ', h('span', { class: 'mono', text: id })),
    message,
    h('div', { class: 'page-head job-head' }, title, badge, h('div', { class: 'actions' }, Object.values(actions))),
    h('section', { class: 'panel' }, facts),
    explainBox,
    h('div', { class: 'split' },
      h('section', { class: 'panel' }, h('h2', { text: 'Args' }), argsPre),
      h('section', { class: 'panel' }, h('h2', { text: 'Result' }), resultPre, h('h2', { text: 'Progress' }), progressPre)),
    h('section', { class: 'panel' }, h('h2', { text: 'Attempts' }),
      h('div', { class: 'scroll-x' }, h('table', { class: 'data attempts', id: 'job-attempts' },
        h('thead', {}, h('tr', {}, [['Lease', 'num'], ['Worker'], ['Started', 'num'], ['Took', 'num'], ['Outcome'], ['Error']]
          .map(([t, cls]) => h('th', { scope: 'col', class: cls, text: t })))),
        attemptsBody)), otherErrors),
    h('div', { class: 'split' },
      h('section', { class: 'panel' }, h('h2', { text: 'Timeline' }), timeline),
      h('section', { class: 'panel' }, h('h2', { text: 'Meta' }), metaPre)),
  );

  async function load() {
    if (!alive) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const [j, ev] = await Promise.all([get(`/v1/jobs/${seg(id)}`), get(`/v1/jobs/${seg(id)}/events`)]);
      const why = WAITING.includes(j.state) ? await get(`/v1/jobs/${seg(id)}/explain`).catch(() => null) : null;
      if (!alive) return;
      job = j;
      message.hidden = true;
      render(j, ev.events, why);
    } catch (e) {
      if (!alive) return;
      message.hidden = false;
      replace(message, e.status === 404 ? `No job ${id}: it never existed, or it was deleted or pruned. ` : `Could not load the job: ${e.message} `,
        h('a', { href: '#/jobs', text: 'Back to jobs' }));
      if (e.status === 404) {
        job = null;
        for (const b of Object.values(actions)) b.disabled = true;
      }
    } finally {
      busy = false;
      if (again && alive) {
        again = false;
        load();
      }
    }
  }

  /** For a workflow step: its run (a link back) and its step, with what it waits for. */
  function workflowFacts(s, state) {
    const deps = s.depends_on && s.depends_on.length ? s.depends_on.join(', ') : null;
    let wait = null;
    if (state === 'pending' && s.waiting_on > 0) wait = `waiting on ${s.waiting_on} of ${s.depends_on.length}`;
    else if (s.upstream_failed) wait = 'cancelled: upstream failed';
    return [
      fact('Workflow run', h('a', { href: `#/workflows/${encodeURIComponent(s.workflow_id)}`, class: 'mono', id: 'job-workflow', title: s.workflow_id, text: shortId(s.workflow_id) })),
      fact('Step', [h('span', { class: 'mono', id: 'job-step', text: s.step }), wait ? h('span', { class: 'muted', text: ` · ${wait}` }) : null]),
      fact('After', deps, { class: 'mono', title: deps }),
    ];
  }

  function render(j, events, why) {
    title.textContent = j.kind;
    replace(badge, stateBadge(j.state), j.cancel_requested ? h('span', { class: 'badge warn', text: 'cancel requested' }) : null);
    // A finished step starts over only with its run (the server refuses it alone).
    const finishedStep = j.workflow && FINISHED.includes(j.state);
    actions.retry.disabled = !RETRYABLE_FROM.includes(j.state) || finishedStep;
    actions.retry.title = finishedStep ? 'A finished workflow step is retried with its run' : '';
    actions.cancel.disabled = !CANCELLABLE_FROM.includes(j.state) || j.cancel_requested;
    actions.delete.disabled = !FINISHED.includes(j.state);

    replace(facts,
      fact('Id', j.id, { class: 'mono' }),
      j.workflow ? workflowFacts(j.workflow, j.state) : null,
      fact('Queue', h('a', { href: `#/jobs?queue=${encodeURIComponent(j.queue)}`, text: j.queue })),
      fact('Priority', String(j.priority), { class: 'num' }),
      fact('Attempt', `${j.attempt} of ${j.max_attempts}`, { class: 'num' }),
      timeFact('Created', j.created_at),
      timeFact(j.state === 'running' || FINISHED.includes(j.state) ? 'Was available' : 'Available at', j.available_at),
      timeFact('Started', j.started_at),
      timeFact('Finished', j.finished_at),
      fact('Worker', j.worker_id, { class: 'mono' }),
      timeFact('Lease expires', j.lease_expires_at),
      fact('Timeout', fmtDuration(j.timeout_ms), { class: 'num' }),
      fact('Tags', j.tags.length ? j.tags.map((t) => h('a', { class: 'tag', href: `#/jobs?tag=${encodeURIComponent(t)}`, text: t })) : null),
      fact('Idempotency key', j.idempotency_key, { class: 'mono' }),
      fact('Concurrency key', j.concurrency_key, { class: 'mono' }),
      fact('Fairness key', j.fairness_key, { class: 'mono' }),
      fact('Lease seq', String(j.lease_seq), { class: 'num' }),
    );

    if (why) {
      explainBox.hidden = false;
      replace(explainBox, h('h2', { text: why.runnable ? 'Waiting its turn' : 'Why it is not running' }),
        h('p', { class: 'summary', text: why.summary }),
        h('ul', { class: 'reasons' }, why.reasons.map((r) => h('li', { class: r.blocking ? 'blocking' : '', dataset: { code: r.code } },
          h('span', { class: `badge ${r.blocking ? 'warn' : 'muted'}`, text: r.blocking ? 'blocks' : 'info' }), ' ',
          h('span', { text: r.message }), r.until ? h('span', { class: 'muted', text: ` (until ${fmtTime(r.until)})` }) : null))));
    } else {
      explainBox.hidden = true;
    }

    argsPre.textContent = prettyJson(j.args);
    resultPre.textContent = j.result === null || j.result === undefined ? '—' : prettyJson(j.result);
    progressPre.textContent = j.progress === null || j.progress === undefined ? '—' : prettyJson(j.progress);
    metaPre.textContent = prettyJson(j.meta);

    // An attempt's error is the one recorded when it ended (same instant); errors with no
    // matching lease (a rescue after a restart, say) are listed below the table.
    const errors = [...j.errors];
    const rows = j.attempts.map((a) => {
      const k = errors.findIndex((e) => a.finished_at && e.at === a.finished_at);
      const err = k >= 0 ? errors.splice(k, 1)[0] : null;
      const took = a.finished_at ? Date.parse(a.finished_at) - Date.parse(a.started_at) : null;
      return h('tr', { dataset: { lease: a.lease_seq } },
        h('td', { class: 'num', text: String(a.lease_seq) }),
        h('td', { class: 'mono', text: a.worker_id }),
        h('td', { class: 'num' }, h('time', { datetime: a.started_at, title: fmtRel(a.started_at) }, fmtTime(a.started_at))),
        h('td', { class: 'num', text: took === null ? 'running' : fmtDuration(took) }),
        h('td', {}, a.outcome ? h('span', { class: `badge outcome-${a.outcome}`, text: a.outcome.replace('_', ' ') }) : '—'),
        h('td', { class: 'error-cell' }, err ? [h('span', { class: 'err-kind', text: err.kind }), ' ', h('span', { class: 'err-msg', text: err.message })] : ''));
    });
    replace(attemptsBody, rows.length ? rows : h('tr', { class: 'empty' }, h('td', { colspan: 6, text: 'Not leased yet.' })));
    replace(otherErrors, errors.length ? [h('h3', { text: 'Other errors' }), h('ul', { class: 'errors' }, errors.map((e) => h('li', {},
      h('span', { class: 'num', text: `attempt ${e.attempt} · ${fmtTime(e.at)} · ` }), h('span', { class: 'err-kind', text: e.kind }), ' ',
      h('span', { class: 'err-msg', text: e.message }))))] : null);

    replace(timeline, events.map((e) => h('li', { dataset: { seq: e.seq, to: e.to } },
      h('time', { class: 'num', datetime: e.at, title: fmtRel(e.at) }, fmtTime(e.at)),
      h('span', { class: 'move' }, e.from ? [stateBadge(e.from), ' → '] : null, stateBadge(e.to)),
      h('span', { class: 'reason', text: e.reason }),
      h('span', { class: 'actor mono', text: e.actor }))));
  }

  async function act(action) {
    if (!job) return;
    const button = actions[action];
    if (button.disabled) return;
    if (action !== 'retry') {
      const ok = await confirmDialog(action === 'delete' ? 'Delete this job?' : 'Cancel this job?',
        action === 'delete' ? 'The job and its events are removed for good.'
          : job.state === 'running' ? 'The worker is asked to stop at its next heartbeat.' : 'The job will not run.',
        action === 'delete' ? 'Delete' : 'Cancel job', action === 'delete');
      if (!ok) return;
    }
    button.disabled = true;
    try {
      if (action === 'delete') {
        await del(`/v1/jobs/${seg(id)}`);
        toast('Job deleted', 'ok');
        location.hash = '#/jobs';
        return;
      }
      const j = await post(`/v1/jobs/${seg(id)}/${action}`, {});
      toast(action === 'retry' ? `Retried: the job is ${j.state}` : j.state === 'cancelled' ? 'Job cancelled' : 'Cancel requested', 'ok');
    } catch (e) {
      toast(`${action} failed: ${e.message}`, 'error');
    }
    load();
  }

  const refresh = throttle(load, 500);
  const unsubscribe = subscribe((ev) => {
    if (ev.type === 'gap' || ev.job_id === id) refresh();
  });
  // Progress and lease expiry change without a transition while a job runs.
  const timer = setInterval(() => {
    if (job && job.state === 'running' && !document.hidden) load();
  }, 3000);
  load();

  return {
    title: `Job ${id.slice(-8)}`,
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(timer);
    },
    keys: {
      r: ['Retry the job', () => act('retry')],
      c: ['Cancel the job', () => act('cancel')],
      D: ['Delete the job', () => act('delete')],
      u: ['Back to the job list', () => { location.hash = '#/jobs'; }],
    },
  };
}
