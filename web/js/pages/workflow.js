// One workflow run (GET /v1/workflows/{id}): its state and counts, cancel and retry, and its
// steps laid out by depth (the longest path from a step without dependencies), one column per
// depth, so every step sits to the right of all it waits for. Each step links to its job.
// Refreshes when the live stream reports a change of one of its steps (at most twice a
// second), and every 5 s while the run is running (which also finds steps added to it).

import { get, post, seg } from '../api.js';
import { confirmDialog, fact, h, replace, setText, stateBadge, throttle, timeFact, toast } from '../dom.js';
import { fmtNum } from '../format.js';
import { subscribe } from '../live.js';
import { runLabel } from './workflows.js';

/**
 * The steps (jobs) grouped by depth: `[[job, ...], ...]`, depth 0 first, each layer in the
 * answer's order (submission order). Dependencies outside the run are ignored; a step left over
 * by a cycle (which the server refuses) goes in a last layer rather than being lost.
 */
export function layers(steps) {
  const byName = new Map(steps.map((j) => [j.workflow.step, j]));
  const children = new Map();
  const waiting = new Map();
  for (const j of steps) {
    const parents = (j.workflow.depends_on || []).filter((p) => byName.has(p));
    waiting.set(j.workflow.step, parents.length);
    for (const p of parents) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(j.workflow.step);
    }
  }
  const depth = new Map();
  const queue = steps.filter((j) => waiting.get(j.workflow.step) === 0).map((j) => j.workflow.step);
  for (const name of queue) depth.set(name, 0);
  // Kahn's order: a step's depth is final once its last parent has been placed.
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i];
    for (const c of children.get(name) || []) {
      depth.set(c, Math.max(depth.get(c) || 0, depth.get(name) + 1));
      const left = waiting.get(c) - 1;
      waiting.set(c, left);
      if (left === 0) queue.push(c);
    }
  }
  const out = [];
  const rest = [];
  for (const j of steps) {
    const name = j.workflow.step;
    if (waiting.get(name) === 0) {
      const d = depth.get(name);
      while (out.length <= d) out.push([]);
      out[d].push(j);
    } else rest.push(j);
  }
  if (rest.length) out.push(rest);
  return out;
}

const FAILED = ['dead', 'cancelled'];

export function mount(root, { args }) {
  const id = args[0];
  let run = null;
  let stepIds = new Set();
  let shape = ''; // the layers' step names, to rebuild the layout only when it changes
  const cards = new Map(); // step name → {card, parts}
  let alive = true;
  let busy = false;
  let again = false;

  const title = h('h1', { class: 'run-title', text: 'Workflow run' });
  const badge = h('span', { class: 'job-state', id: 'workflow-state' });
  const actions = {
    cancel: h('button', { type: 'button', id: 'workflow-cancel', disabled: true, 'aria-keyshortcuts': 'c', on: { click: () => act('cancel') } }, 'Cancel ', h('kbd', { text: 'c' })),
    retry: h('button', { type: 'button', id: 'workflow-retry', disabled: true, 'aria-keyshortcuts': 'r', on: { click: () => act('retry') } }, 'Retry ', h('kbd', { text: 'r' })),
  };
  const facts = h('dl', { class: 'facts', id: 'workflow-facts' });
  const progress = h('span', { class: 'muted', id: 'workflow-progress' });
  const dag = h('div', { class: 'dag', id: 'workflow-steps' });
  const message = h('p', { class: 'notice', hidden: true });

  root.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/workflows', text: 'Workflows' }), ' / ', h('span', { class: 'mono', text: id })),
    message,
    h('div', { class: 'page-head job-head' }, title, badge, h('div', { class: 'actions' }, Object.values(actions))),
    h('section', { class: 'panel' }, facts),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Steps' }), progress),
      h('p', { class: 'muted dag-hint', text: 'By depth: each column waits for the ones to its left. A step opens its job.' }),
      h('div', { class: 'scroll-x' }, dag)),
  );

  async function load() {
    if (!alive) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const answer = await get(`/v1/workflows/${seg(id)}`);
      if (!alive) return;
      run = answer.workflow;
      message.hidden = true;
      render(answer.workflow, answer.steps);
    } catch (e) {
      if (!alive) return;
      message.hidden = false;
      replace(message, e.status === 404 ? `No workflow run ${id}. ` : `Could not load the run: ${e.message} `,
        h('a', { href: '#/workflows', text: 'Back to workflows' }));
      if (e.status === 404 || e.status === 400) {
        run = null;
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

  function render(w, allSteps) {
    const steps = allSteps.filter((j) => j.workflow);
    title.textContent = runLabel(w);
    document.title = `${runLabel(w)} · Hopper`;
    replace(badge, stateBadge(w.state), w.cancel_requested && w.state === 'running' ? h('span', { class: 'badge warn', text: 'cancel requested' }) : null);
    actions.cancel.disabled = w.state !== 'running' || w.cancel_requested;
    actions.retry.disabled = !(w.state === 'failed' || w.state === 'cancelled');

    const done = w.steps - w.open_steps;
    replace(facts,
      fact('Id', w.id, { class: 'mono' }),
      fact('Definition', w.definition),
      fact('Logical date', w.logical_date, { class: 'mono' }),
      fact('Steps done', `${fmtNum(done)} of ${fmtNum(w.steps)}`, { class: 'num', id: 'workflow-done' }),
      fact('Open steps', fmtNum(w.open_steps), { class: 'num' }),
      fact('Failed steps', fmtNum(w.failed_steps), { class: `num${w.failed_steps ? ' failed' : ''}` }),
      timeFact('Created', w.created_at),
      timeFact('Finished', w.finished_at),
    );

    const counts = {};
    for (const j of steps) counts[j.state] = (counts[j.state] || 0) + 1;
    setText(progress, Object.entries(counts).map(([s, n]) => `${fmtNum(n)} ${s}`).join(' · '));

    stepIds = new Set(steps.map((j) => j.id));
    const grouped = layers(steps);
    const nextShape = grouped.map((l) => l.map((j) => j.workflow.step).join('\n')).join('\n\n');
    if (nextShape !== shape) {
      // New steps (or a first render): lay the columns out again, reusing the cards we have.
      shape = nextShape;
      const focused = document.activeElement && dag.contains(document.activeElement)
        ? document.activeElement.closest('.step')?.dataset.step : null;
      const seen = new Set();
      replace(dag, grouped.map((layer, d) => h('section', { class: 'layer', dataset: { depth: d }, 'aria-label': `Depth ${d}` },
        h('h3', {}, `Depth ${d}`, h('span', { class: 'muted', text: ` · ${fmtNum(layer.length)}` })),
        h('ol', { class: 'steps' }, layer.map((j) => {
          seen.add(j.workflow.step);
          return cardFor(j).card;
        })))));
      for (const name of [...cards.keys()]) if (!seen.has(name)) cards.delete(name);
      if (focused && cards.has(focused)) cards.get(focused).parts.link.focus();
    }
    for (const j of steps) fill(cardFor(j), j);
  }

  function cardFor(j) {
    const name = j.workflow.step;
    let c = cards.get(name);
    if (!c) {
      const parts = {
        link: h('a', { class: 'step-name mono', href: `#/jobs/${encodeURIComponent(j.id)}`, text: name }),
        state: h('span', { class: 'step-state' }),
        kind: h('span', { class: 'step-kind muted' }),
        deps: h('span', { class: 'step-deps muted' }),
        note: h('span', { class: 'step-note' }),
      };
      const card = h('li', { class: 'step', dataset: { step: name } },
        h('div', { class: 'step-top' }, parts.link, parts.state), parts.kind, parts.deps, parts.note);
      c = { card, parts };
      cards.set(name, c);
    }
    return c;
  }

  function fill({ card, parts }, j) {
    const s = j.workflow;
    if (card.dataset.state !== j.state) {
      card.dataset.state = j.state;
      replace(parts.state, stateBadge(j.state));
    }
    const href = `#/jobs/${encodeURIComponent(j.id)}`;
    if (parts.link.getAttribute('href') !== href) parts.link.setAttribute('href', href);
    parts.link.title = `Job ${j.id}`;
    setText(parts.kind, `${j.kind} · ${j.queue}`);
    setText(parts.deps, s.depends_on && s.depends_on.length ? `after ${s.depends_on.join(', ')}` : 'no dependencies');
    let note = '';
    let cls = 'step-note';
    if (j.state === 'pending' && s.waiting_on > 0) {
      note = `waiting on ${fmtNum(s.waiting_on)} of ${fmtNum((s.depends_on || []).length)}`;
    } else if (s.upstream_failed) {
      note = 'upstream failed';
      cls += ' warn';
    } else if (FAILED.includes(j.state) && s.on_failure !== 'cancel_dependents') {
      note = `on failure: ${s.on_failure}`;
    } else if (j.cancel_requested && j.state === 'running') {
      note = 'cancel requested';
      cls += ' warn';
    }
    setText(parts.note, note);
    if (parts.note.className !== cls) parts.note.className = cls;
    parts.note.hidden = !note;
  }

  async function act(action) {
    if (!run) return;
    const button = actions[action];
    if (button.disabled) return;
    if (action === 'cancel') {
      const ok = await confirmDialog('Cancel this run?',
        'Its waiting steps are cancelled at once; running ones are asked to stop at their next heartbeat.',
        'Cancel run');
      if (!ok) return;
    }
    button.disabled = true;
    try {
      const w = await post(`/v1/workflows/${seg(id)}/${action}`, {});
      toast(action === 'retry' ? `Retried: the run is ${w.state}`
        : w.state === 'cancelled' ? 'Run cancelled' : 'Cancel requested: running steps are asked to stop', 'ok');
    } catch (e) {
      toast(`${action} failed: ${e.message}`, 'error');
    }
    load();
  }

  const refresh = throttle(load, 500);
  const unsubscribe = subscribe((ev) => {
    if (ev.type === 'gap' || stepIds.has(ev.job_id)) refresh();
  });
  // Steps added to a running run (a fan-out) are not known until read; neither is anything
  // while the stream is down.
  const timer = setInterval(() => {
    if (run && run.state === 'running' && !document.hidden) load();
  }, 5000);
  load();

  return {
    title: `Workflow ${id.slice(-8)}`,
    unmount() {
      alive = false;
      unsubscribe();
      clearInterval(timer);
    },
    keys: {
      c: ['Cancel the run', () => act('cancel')],
      r: ['Retry the run', () => act('retry')],
      u: ['Back to the workflow list', () => { location.hash = '#/workflows'; }],
    },
  };
}
