// Workspaces, a workspace's projects, and its event log.

import { all, api, seg } from './api.mjs';
import { append, announce, badge, crumbs, h, pageTitle, table, tabs, time } from './dom.mjs';
import { quickForm } from './form-view.mjs';

/** The tabs of a workspace's pages. */
export function workspaceTabs(ws, active) {
  const base = `#/w/${seg(ws)}`;
  return tabs([
    ['Projects', base],
    ['Integrations', `${base}/integrations`],
    ['Events', `${base}/events`],
  ], active, 'Workspace');
}

/** `#/`: the workspaces the caller can see, and a form to create one. */
export async function workspacesPage(main, _params, { go }) {
  const workspaces = await all('/workspaces');
  append(main, 
    crumbs([['Workspaces', '#/']]),
    pageTitle('Workspaces'),
    workspaces.length
      ? h('ul', { class: 'cards' }, workspaces.map((w) =>
        h('li', { class: 'card' },
          h('h2', {}, h('a', { href: `#/w/${seg(w.slug)}` }, w.name)),
          h('p', { class: 'muted' }, h('code', {}, w.slug), ' \u00b7 created ', time(w.createdAt)))))
      : h('p', { class: 'empty' }, 'No workspaces yet. Create the first one below.'),
    quickForm({
      title: 'New workspace',
      inputs: [{ name: 'name', label: 'Name', required: true, hint: 'The slug is derived from it and never changes.' }],
      submitLabel: 'Create workspace',
      submit: async ({ name }) => {
        const ws = await api('POST', '/workspaces', { body: { name } });
        announce(`Workspace ${ws.name} created.`);
        go(`/w/${seg(ws.slug)}`);
      },
    }),
  );
}

/** `#/w/{ws}`: the workspace's projects and a form to create one. */
export async function workspacePage(main, [slug], { go }) {
  const [ws, projects] = await Promise.all([
    api('GET', `/workspaces/${seg(slug)}`),
    all(`/workspaces/${seg(slug)}/projects`),
  ]);
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, `#/w/${seg(ws.slug)}`]]),
    pageTitle(ws.name, h('code', { class: 'slug' }, ws.slug)),
    workspaceTabs(ws.slug, `#/w/${seg(ws.slug)}`),
    h('h2', {}, 'Projects'),
    projects.length
      ? table(['Project', 'Slug', 'Description', 'Created'], projects.map((p) =>
        h('tr', {},
          h('td', {}, h('a', { href: `#/p/${seg(p.slug)}` }, p.name)),
          h('td', {}, h('code', {}, p.slug)),
          h('td', {}, p.description ?? ''),
          h('td', {}, time(p.createdAt)))))
      : h('p', { class: 'empty' }, 'No projects yet.'),
    quickForm({
      title: 'New project',
      inputs: [
        { name: 'name', label: 'Name', required: true },
        { name: 'description', label: 'Description' },
        { name: 'environments', label: 'Environments', hint: 'Comma-separated names, e.g. `dev, staging, prod`; more can be added later.', pointer: '/environments' },
      ],
      submitLabel: 'Create project',
      submit: async ({ name, description, environments }) => {
        const body = {
          name,
          environments: environments.split(',').map((e) => e.trim()).filter(Boolean).map((e) => ({ name: e })),
        };
        if (description.trim()) body.description = description;
        const project = await api('POST', `/workspaces/${seg(ws.slug)}/projects`, { body });
        announce(`Project ${project.name} created.`);
        go(`/p/${seg(project.slug)}/environments`);
      },
    }),
  );
}

/** `#/w/{ws}/events`: the event log, newest first, a page at a time. */
export async function eventsPage(main, [slug]) {
  const ws = await api('GET', `/workspaces/${seg(slug)}`);
  const body = h('tbody', {});
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  let cursor;
  const load = async () => {
    more.disabled = true;
    const page = await api('GET', `/workspaces/${seg(slug)}/events`, { query: { limit: 50, cursor } });
    for (const e of page.items) {
      body.append(h('tr', {},
        h('td', {}, time(e.createdAt)),
        h('td', {}, h('code', {}, e.type)),
        h('td', {}, e.title),
        h('td', {}, badge(String(e.severity).toLowerCase(), e.severity)),
        h('td', {}, e.actor?.name ?? '')));
    }
    if (!page.items.length && !cursor) body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No events yet.')));
    cursor = page.nextCursor;
    more.hidden = !cursor;
    more.disabled = false;
  };
  more.addEventListener('click', () => load().catch((err) => announce(err.detail ?? String(err), 'error')));
  await load();
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, `#/w/${seg(ws.slug)}`], ['Events', `#/w/${seg(ws.slug)}/events`]]),
    pageTitle(`Events of ${ws.name}`),
    workspaceTabs(ws.slug, `#/w/${seg(ws.slug)}/events`),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Time', 'Type', 'What', 'Severity', 'By'].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    more,
  );
}
