// One queue: its counts, pause and resume, and its configuration as a form (PUT
// /v1/queues/{name} replaces it whole: a field left empty takes its default). The server
// validates; its answer names the field at fault, which the form marks.

import { get, post, put, seg } from '../api.js';
import { h, replace, setText, toast } from '../dom.js';
import { fmtDuration, fmtNum } from '../format.js';
import { limitsSummary } from './queues.js';

const POLICIES = [
  ['priority', 'priority', 'highest priority first, then oldest'],
  ['fair', 'fair', 'round robin over fairness keys, by weight'],
  ['shortest_first', 'shortest first', 'smallest estimated_ms first'],
];

export function mount(root, { args }) {
  const name = args[0];
  let alive = true;
  let queue = null;

  const input = (path, attrs = {}) => h('input', { name: path, id: `cfg-${path.replace(/\W/g, '-')}`, inputmode: 'numeric', autocomplete: 'off', ...attrs });
  const row = (label, el, hint) => h('div', { class: 'form-row', dataset: { field: el.name } },
    h('label', { for: el.id, text: label }), el, h('span', { class: 'hint', text: hint || '' }), h('span', { class: 'field-error', role: 'alert' }));

  const f = {
    paused: h('input', { type: 'checkbox', name: 'paused', id: 'cfg-paused' }),
    policy: h('select', { name: 'policy', id: 'cfg-policy' }, POLICIES.map(([v, t]) => h('option', { value: v, text: t }))),
    concurrency: input('concurrency'),
    key_concurrency: input('key_concurrency'),
    rateLimit: input('rate.limit'),
    ratePeriod: input('rate.period_ms'),
    rateBurst: input('rate.burst'),
    keyRateLimit: input('key_rate.limit'),
    keyRatePeriod: input('key_rate.period_ms'),
    keyRateBurst: input('key_rate.burst'),
    weights: h('textarea', { name: 'fairness_weights', id: 'cfg-fairness_weights', rows: 3, spellcheck: 'false' }),
    retCompleted: input('retention.completed_ms'),
    retCancelled: input('retention.cancelled_ms'),
    retDead: input('retention.dead_ms'),
  };

  const counts = h('p', { class: 'muted num', id: 'queue-counts', text: 'Loading…' });
  const statusBadge = h('span', { id: 'queue-status' });
  const pauseBtn = h('button', { type: 'button', id: 'queue-pause', text: 'Pause', on: { click: () => togglePause() } });
  const save = h('button', { type: 'submit', class: 'primary', id: 'queue-save', text: 'Save configuration' });
  const formStatus = h('span', { class: 'form-status', role: 'status' });
  const form = h('form', { class: 'config', id: 'queue-config', 'aria-label': `Configuration of ${name}` },
    h('fieldset', {}, h('legend', { text: 'Lease order' }),
      row('Paused', f.paused, 'a paused queue hands out no leases'),
      row('Policy', f.policy, POLICIES[0][2]),
      row('Fairness weights', f.weights, 'one key=weight per line (fair policy)')),
    h('fieldset', {}, h('legend', { text: 'Concurrency' }),
      row('At once', f.concurrency, 'running jobs of the queue; empty: no limit'),
      row('Per key', f.key_concurrency, 'running jobs per concurrency_key')),
    h('fieldset', {}, h('legend', { text: 'Rate (starts per period)' }),
      row('Limit', f.rateLimit, 'empty: no rate limit'), row('Period (ms)', f.ratePeriod), row('Burst', f.rateBurst, 'default: the limit')),
    h('fieldset', {}, h('legend', { text: 'Rate per key' }),
      row('Limit', f.keyRateLimit, 'empty: no rate limit per key'), row('Period (ms)', f.keyRatePeriod), row('Burst', f.keyRateBurst)),
    h('fieldset', {}, h('legend', { text: 'Retention of finished jobs (ms)' }),
      row('Completed', f.retCompleted, "empty: the server's default"), row('Cancelled', f.retCancelled), row('Dead', f.retDead)),
    h('div', { class: 'form-actions' }, save, formStatus));

  root.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/queues', text: 'Queues' }), ' / ', h('span', { text: name })),
    h('div', { class: 'page-head' }, h('h1', { text: name }), statusBadge, h('div', { class: 'actions' }, pauseBtn,
      h('a', { class: 'button', href: `#/jobs?queue=${encodeURIComponent(name)}`, text: 'Jobs' }),
      h('a', { class: 'button', href: `#/dead?queue=${encodeURIComponent(name)}`, text: 'Dead letters' }))),
    counts, form);

  // Hints that turn milliseconds into words as they are typed.
  for (const el of [f.ratePeriod, f.keyRatePeriod, f.retCompleted, f.retCancelled, f.retDead]) {
    el.addEventListener('input', () => msHint(el));
  }
  f.policy.addEventListener('change', policyHint);

  function policyHint() {
    const p = POLICIES.find(([v]) => v === f.policy.value);
    setText(f.policy.closest('.form-row').querySelector('.hint'), p ? p[2] : '');
  }

  function msHint(el) {
    const hint = el.closest('.form-row').querySelector('.hint');
    const v = Number(el.value.trim());
    if (el.value.trim() && Number.isFinite(v)) setText(hint, `= ${fmtDuration(v)}`);
    else if (!el.value.trim()) setText(hint, el === f.retCompleted ? "empty: the server's default" : '');
  }

  function showQueue(q) {
    queue = q;
    replace(statusBadge, h('span', { class: q.paused ? 'badge paused' : 'badge ok', text: q.paused ? 'paused' : 'active' }));
    pauseBtn.textContent = q.paused ? 'Resume' : 'Pause';
    const c = q.counts;
    setText(counts, `${fmtNum(c.available)} available · ${fmtNum(c.running)} running · ${fmtNum(c.scheduled + c.retryable + c.pending)} waiting · ${fmtNum(c.dead)} dead · ${limitsSummary(q.config)}`);
  }

  function fillForm(c) {
    const v = (x) => (x === null || x === undefined ? '' : String(x));
    f.paused.checked = c.paused;
    f.policy.value = c.policy;
    f.concurrency.value = v(c.concurrency);
    f.key_concurrency.value = v(c.key_concurrency);
    f.rateLimit.value = v(c.rate && c.rate.limit);
    f.ratePeriod.value = v(c.rate && c.rate.period_ms);
    f.rateBurst.value = v(c.rate && c.rate.burst);
    f.keyRateLimit.value = v(c.key_rate && c.key_rate.limit);
    f.keyRatePeriod.value = v(c.key_rate && c.key_rate.period_ms);
    f.keyRateBurst.value = v(c.key_rate && c.key_rate.burst);
    f.weights.value = Object.entries(c.fairness_weights || {}).map(([k, w]) => `${k}=${w}`).join('\n');
    f.retCompleted.value = v(c.retention.completed_ms);
    f.retCancelled.value = v(c.retention.cancelled_ms);
    f.retDead.value = v(c.retention.dead_ms);
    for (const el of [f.ratePeriod, f.keyRatePeriod, f.retCompleted, f.retCancelled, f.retDead]) msHint(el);
    policyHint();
  }

  /** The form as a configuration; throws {field, message} on what cannot be a number. */
  function readForm() {
    const int = (el) => {
      const s = el.value.trim();
      if (!s) return null;
      if (!/^-?\d+$/.test(s)) throw { field: el.name, message: 'a whole number' };
      return Number(s);
    };
    const rate = (limit, period, burst, field) => {
      const l = int(limit);
      const p = int(period);
      const b = int(burst);
      if (l === null && p === null && b === null) return null;
      if (l === null) throw { field: `${field}.limit`, message: 'needed with a period or burst' };
      if (p === null) throw { field: `${field}.period_ms`, message: 'needed with a limit' };
      return b === null ? { limit: l, period_ms: p } : { limit: l, period_ms: p, burst: b };
    };
    const weights = {};
    for (const line of f.weights.value.split('\n').map((s) => s.trim()).filter(Boolean)) {
      const m = line.match(/^(.+?)\s*=\s*(\d+)$/);
      if (!m) throw { field: 'fairness_weights', message: `"${line}" is not key=weight` };
      weights[m[1]] = Number(m[2]);
    }
    return {
      paused: f.paused.checked,
      policy: f.policy.value,
      concurrency: int(f.concurrency),
      key_concurrency: int(f.key_concurrency),
      rate: rate(f.rateLimit, f.ratePeriod, f.rateBurst, 'rate'),
      key_rate: rate(f.keyRateLimit, f.keyRatePeriod, f.keyRateBurst, 'key_rate'),
      fairness_weights: weights,
      retention: { completed_ms: int(f.retCompleted), cancelled_ms: int(f.retCancelled), dead_ms: int(f.retDead) },
    };
  }

  function clearErrors() {
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  function markError(field, message) {
    // The server names paths like `rate.limit` or `fairness_weights.gold`.
    const rowEl = form.querySelector(`.form-row[data-field="${CSS.escape(field)}"]`)
      || form.querySelector(`.form-row[data-field="${CSS.escape(field.split('.')[0])}"]`);
    if (!rowEl) return false;
    setText(rowEl.querySelector('.field-error'), message);
    const el = rowEl.querySelector('input, select, textarea');
    el.setAttribute('aria-invalid', 'true');
    el.focus();
    return true;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    let config;
    try {
      config = readForm();
    } catch (err) {
      markError(err.field, err.message);
      setText(formStatus, 'Not saved: fix the marked field.');
      return;
    }
    save.disabled = true;
    setText(formStatus, 'Saving…');
    try {
      const q = await put(`/v1/queues/${seg(name)}`, config);
      showQueue(q);
      fillForm(q.config);
      setText(formStatus, `Saved at ${new Date().toLocaleTimeString()}.`);
      toast(`Queue ${name} configured`, 'ok');
    } catch (err) {
      const marked = err.field && markError(err.field, err.message);
      setText(formStatus, `Not saved: ${marked ? 'see the marked field' : err.describe ? err.describe() : err.message}.`);
    } finally {
      save.disabled = false;
    }
  });

  async function togglePause() {
    if (!queue) return;
    const paused = !queue.paused;
    try {
      const q = await post(`/v1/queues/${seg(name)}/${paused ? 'pause' : 'resume'}`, {});
      showQueue(q);
      f.paused.checked = q.paused;
      toast(`Queue ${name} ${paused ? 'paused' : 'resumed'}`, 'ok');
    } catch (e) {
      toast(`Could not ${paused ? 'pause' : 'resume'}: ${e.message}`, 'error');
    }
  }

  get(`/v1/queues/${seg(name)}`).then((q) => {
    if (!alive) return;
    showQueue(q);
    fillForm(q.config);
  }).catch((e) => {
    if (alive) setText(counts, `Could not load the queue: ${e.message}`);
  });

  return {
    title: `Queue ${name}`,
    unmount() {
      alive = false;
    },
    keys: {
      P: ['Pause or resume the queue', () => togglePause()],
      e: ['Edit the configuration', () => f.policy.focus()],
      u: ['Back to the queues', () => { location.hash = '#/queues'; }],
    },
  };
}
