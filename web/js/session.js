// Who is logged in. A server without API keys needs no login; once it has keys, the page asks
// for one and exchanges it for the session and CSRF cookies (`POST /v1/session`). The key
// itself never stays in the page: the session cookie holding it is HttpOnly.

import { del, get, namespace, post, setNamespace } from './api.js';
import { h, replace } from './dom.js';

let current = null;

/** The caller (`GET /v1/session`), or null when the server needs a key the page lacks. */
export async function whoami() {
  const me = await get('/v1/session');
  current = me.authenticated ? me : null;
  return current;
}

/** Whether the logged-in key sees every namespace (what node-wide statistics need). */
export function seesEveryNamespace() {
  return !current || !current.namespaces || current.namespaces.includes('*');
}

/** Shows the login form in `root`; resolves once a key was accepted. */
export function showLogin(root) {
  return new Promise((resolve) => {
    const input = h('input', {
      id: 'login-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
      required: true, placeholder: 'hop_…', 'aria-describedby': 'login-help',
    });
    const error = h('p', { id: 'login-error', class: 'error', role: 'alert' });
    const form = h('form', { class: 'login', id: 'login-form' },
      h('h1', { text: 'Log in' }),
      h('p', { id: 'login-help', class: 'muted', text: 'This server needs an API key. Paste yours; it is kept in an HttpOnly session cookie, not in the page.' }),
      h('label', { for: 'login-key', text: 'API key' }),
      input,
      h('div', { class: 'dialog-buttons' }, h('button', { type: 'submit', class: 'primary', id: 'login-submit', text: 'Log in' })),
      error);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        await post('/v1/session', { key: input.value.trim() });
        resolve();
      } catch (e) {
        error.textContent = e.status === 401 ? `Not accepted: ${e.message}` : `Could not log in: ${e.message}`;
        input.select();
      }
    });
    replace(root, form);
    input.focus();
  });
}

/** Fills the header's account area: who, the namespace to act in, and logging out. */
export function showAccount(el, me) {
  if (!me.auth_enabled) {
    replace(el);
    return;
  }
  const all = me.namespaces.includes('*');
  const choices = all ? null : me.namespaces;
  const current = namespace() || (choices && choices.length === 1 ? choices[0] : 'default');
  const picker = choices && choices.length > 1
    ? h('select', { id: 'namespace', 'aria-label': 'Namespace' },
      choices.map((n) => h('option', { value: n, text: n, selected: n === current })))
    : h('input', {
      id: 'namespace', 'aria-label': 'Namespace', value: current, size: 12,
      disabled: !all, title: all ? 'The namespace to show (Enter to switch)' : 'Your key sees this namespace only',
    });
  const switchTo = () => {
    const ns = picker.value.trim();
    if (!ns || ns === current) return;
    setNamespace(ns);
    location.reload();
  };
  picker.addEventListener(picker.tagName === 'SELECT' ? 'change' : 'keydown', (ev) => {
    if (ev.type === 'change' || ev.key === 'Enter') switchTo();
  });
  const logout = h('button', { type: 'button', id: 'logout', text: 'Log out' });
  logout.addEventListener('click', async () => {
    await del('/v1/session').catch(() => {});
    setNamespace(null);
    location.reload();
  });
  replace(el,
    h('span', { class: 'who', id: 'who', title: `key ${me.actor}` }, `${me.role} · ${me.actor.slice(0, 8)}`),
    picker, logout);
}
