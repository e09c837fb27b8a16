// The console's shell: sign-in, navigation (hash routes, so the server serves one page) and the
// page registry. Each page is `async (main, params, ctx) => cleanup?`.

import { api, setToken, signOut, token } from './api.mjs';
import { h, clear, errorBox, pageTitle } from './dom.mjs';
import { workspacesPage, workspacePage, eventsPage } from './page-workspaces.mjs';
import { projectPage } from './page-project.mjs';
import { integrationsPage, newIntegrationPage } from './page-integrations.mjs';
import { integrationPage } from './page-integration.mjs';
import { integrationFormPage } from './page-integration-form.mjs';

const routes = [
  [/^\/$/, workspacesPage],
  [/^\/w\/([^/]+)$/, workspacePage],
  [/^\/w\/([^/]+)\/events$/, eventsPage],
  [/^\/w\/([^/]+)\/integrations$/, integrationsPage],
  [/^\/w\/([^/]+)\/integrations\/new$/, newIntegrationPage],
  [/^\/w\/([^/]+)\/integrations\/new\/([^/]+)$/, (main, [ws, type], ctx) => integrationFormPage(main, { workspace: ws, type }, ctx)],
  [/^\/p\/([^/]+)$/, (main, [p], ctx) => projectPage(main, [p, 'secrets'], ctx)],
  [/^\/p\/([^/]+)\/(secrets|variables|environments)$/, projectPage],
  [/^\/i\/([^/]+)$/, integrationPage],
  [/^\/i\/([^/]+)\/edit$/, (main, [slug], ctx) => integrationFormPage(main, { slug }, ctx)],
];

const main = document.getElementById('main');
const userBox = document.getElementById('user');
let cleanup = null;
let me = null;

function currentPath() {
  const hash = location.hash.replace(/^#/, '');
  return hash.startsWith('/') ? hash : '/';
}

/** Navigates to a console path (`/w/acme`). */
export function go(path) {
  if (currentPath() === path) render();
  else location.hash = `#${path}`;
}

function renderUser() {
  clear(userBox);
  if (!me) return;
  userBox.append(
    h('span', { class: 'who' }, 'Signed in as ', h('strong', {}, me.name)),
    h('button', {
      type: 'button',
      class: 'small secondary',
      onclick: () => {
        stopPage();
        signOut();
        me = null;
        renderUser();
        render();
      },
    }, 'Sign out'),
  );
}

function signInPage(message) {
  clear(main);
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const status = h('div', { class: 'error-box', role: 'alert', hidden: !message }, message ?? '');
  const form = h('form', {
    class: 'card narrow',
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (!value) {
        status.textContent = 'Enter an API token.';
        status.hidden = false;
        input.focus();
        return;
      }
      status.hidden = true;
      try {
        me = await api('GET', '/me', { tokenOverride: value });
        setToken(value);
        renderUser();
        render();
      } catch (err) {
        status.textContent = err.status === 401 ? 'That token is not valid (unknown, revoked or expired).' : String(err.detail ?? err.message);
        status.hidden = false;
        input.focus();
      }
    },
  },
  h('div', { class: 'field' },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'hint' }, 'The admin token is printed once when keywire first starts. The token is kept only in this tab (session storage) and sent as a bearer header.')),
  status,
  h('button', { type: 'submit' }, 'Sign in'));
  main.append(pageTitle('Sign in to keywire'), form);
  input.focus();
}

function stopPage() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      // A page's cleanup must not stop navigation.
    }
    cleanup = null;
  }
}

async function render() {
  stopPage();
  if (!token()) {
    me = null;
    renderUser();
    signInPage();
    return;
  }
  if (!me) {
    try {
      me = await api('GET', '/me');
      renderUser();
    } catch (err) {
      if (!token()) return signInPage('Your session ended; sign in again.');
      clear(main).append(pageTitle('keywire'), errorBox(err));
      return;
    }
  }
  const path = currentPath();
  for (const [pattern, page] of routes) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = match.slice(1).map(decodeURIComponent);
    clear(main);
    main.append(h('p', { class: 'muted loading' }, 'Loading\u2026'));
    const ctx = { me, go };
    try {
      const fragment = h('div', { class: 'page' });
      const done = (await page(fragment, params, ctx)) ?? null;
      if (currentPath() !== path) {
        // The user moved on while this page loaded: drop it.
        done?.();
        return;
      }
      cleanup = done;
      clear(main).append(fragment);
      main.querySelector('h1')?.focus({ preventScroll: true });
    } catch (err) {
      if (!token()) return signInPage('Your session ended (the token is no longer valid); sign in again.');
      if (currentPath() !== path) return;
      clear(main).append(pageTitle('Something went wrong'), errorBox(err), h('p', {}, h('a', { href: '#/' }, 'Back to workspaces')));
    }
    return;
  }
  clear(main).append(pageTitle('Not found'), h('p', {}, 'The console has no page at ', h('code', {}, path), '. ', h('a', { href: '#/' }, 'Go to workspaces')));
}

document.querySelector('.skip')?.addEventListener('click', (e) => {
  // The hash is the route: focus the content instead of following `#main`.
  e.preventDefault();
  (main.querySelector('h1') ?? main).focus();
});
window.addEventListener('hashchange', render);
window.addEventListener('keywire:signed-out', () => {
  stopPage();
  me = null;
  renderUser();
  signInPage('Your session ended (the token is no longer valid); sign in again.');
});
render();
