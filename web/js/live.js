// The live event stream (`GET /v1/events`, Server-Sent Events): one connection for the whole
// page, shared by whichever page is open. Each job transition arrives as a message; a `gap`
// event means some were skipped, and pages then refetch what they show. When the stream is
// not reachable, pages fall back to their own polling and the header says so.

import { namespace } from './api.js';

const listeners = new Set();
const stateListeners = new Set();
let source = null;
let state = 'connecting';
let retryTimer = null;

/** Current connection state: `connecting`, `live`, or `offline`. */
export function liveState() {
  return state;
}

/** True while events flow, so pages may poll less. */
export function isLive() {
  return state === 'live';
}

/**
 * Calls `fn(event)` for every job event, and `fn({type: 'gap'})` when events were missed
 * (a gap frame, or a reconnect). Returns the unsubscribe function.
 */
export function subscribe(fn) {
  listeners.add(fn);
  connect();
  return () => listeners.delete(fn);
}

/** Calls `fn(state)` on every connection state change (and once now). */
export function onLiveState(fn) {
  stateListeners.add(fn);
  connect();
  fn(state);
  return () => stateListeners.delete(fn);
}

function setState(s) {
  if (s === state) return;
  state = s;
  for (const fn of stateListeners) fn(s);
}

function emit(ev) {
  for (const fn of [...listeners]) {
    try {
      fn(ev);
    } catch (e) {
      // One page's bug must not stop the stream for the others.
      console.warn('live event listener failed', e);
    }
  }
}

function connect() {
  if (source || retryTimer) return;
  let opened = false;
  // EventSource cannot send headers: the namespace goes in the query.
  const ns = namespace();
  source = new EventSource(ns ? `/v1/events?namespace=${encodeURIComponent(ns)}` : '/v1/events');
  source.addEventListener('open', () => {
    // After a reconnect the browser resumes with Last-Event-ID, but what happened while the
    // connection was down may still be missing from what a page shows: refetch.
    if (opened) emit({ type: 'gap' });
    opened = true;
    setState('live');
  });
  source.addEventListener('message', (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (ev && typeof ev === 'object') emit(ev);
  });
  source.addEventListener('gap', () => emit({ type: 'gap' }));
  source.addEventListener('error', () => {
    if (source && source.readyState === EventSource.CLOSED) {
      // The browser gives up on a refused stream (an error status); try again later.
      source.close();
      source = null;
      setState('offline');
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, 10_000);
    } else {
      setState('connecting');
    }
  });
}
