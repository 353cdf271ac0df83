// The HTTP API, as the UI uses it. Every state-changing call sends a JSON body (`{}` when it
// has none) with `content-type: application/json`: the server refuses other bodies, and the
// same-origin page is what its cross-origin guard lets through. Once logged in, the session
// cookie authenticates every call and state-changing ones echo the CSRF cookie in
// `X-CSRF-Token`; the namespace chosen in the header goes in `X-Hopper-Namespace`.

/** An error answer of the API (`{"error": {code, message, field}}`), or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }

  /** "invalid_argument: limit must be … (field: rate.limit)". */
  describe() {
    return this.field ? `${this.message} (${this.field})` : this.message;
  }
}

/** The value of cookie `name`, or null. */
function cookie(name) {
  const pair = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return pair ? pair.slice(name.length + 1) : null;
}

const NAMESPACE_KEY = 'hopper.namespace';

/** The namespace chosen in the header, or null for the key's own. */
export function namespace() {
  try {
    return localStorage.getItem(NAMESPACE_KEY) || null;
  } catch {
    return null;
  }
}

/** Chooses the namespace every call acts in (null: the key's own). */
export function setNamespace(ns) {
  try {
    if (ns) localStorage.setItem(NAMESPACE_KEY, ns);
    else localStorage.removeItem(NAMESPACE_KEY);
  } catch {
    // Storage disabled: the choice is lost on reload.
  }
}

/** Calls the API; resolves to the parsed JSON answer (null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: { accept: 'application/json' }, cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
    const csrf = cookie('hopper_csrf');
    if (csrf) init.headers['x-csrf-token'] = csrf;
  }
  const ns = namespace();
  if (ns) init.headers['x-hopper-namespace'] = ns;
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'unavailable', 'the server did not answer');
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (resp.status === 401 && path !== '/v1/session') {
    // The session ended (expired or revoked key): start over at the login.
    location.reload();
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || resp.statusText, e.field);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/** `?a=1&b=2` from an object, leaving out empty values; arrays repeat the key. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** Path segment encoding for ids and names. */
export const seg = encodeURIComponent;

/** Every job state, in the order a job usually moves through them. */
export const STATES = ['pending', 'scheduled', 'available', 'running', 'retryable', 'completed', 'dead', 'cancelled'];
/** States a job waits in (where "why is it not running?" has an answer). */
export const WAITING = ['pending', 'scheduled', 'available', 'retryable'];
/** Finished states (deletable, retryable from scratch). */
export const FINISHED = ['completed', 'dead', 'cancelled'];
