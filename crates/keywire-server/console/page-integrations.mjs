// A workspace's integrations at a glance, and the choice of a type for a new one.

import { all, api, integrationTypes, seg } from './api.mjs';
import { append, badge, crumbs, h, pageTitle, table, time } from './dom.mjs';
import { workspaceTabs } from './page-workspaces.mjs';

/** "Workspace", "Web Shop", "Web Shop · dev, prod": where an integration listens. */
export function scopeText(integration, projectNames = new Map()) {
  if (!integration.projectSlug) return 'Whole workspace';
  const project = projectNames.get(integration.projectSlug) ?? integration.projectSlug;
  const envs = integration.environmentSlugs ?? [];
  return envs.length ? `${project} \u00b7 ${envs.join(', ')}` : `${project} \u00b7 all environments`;
}

/** A small mark for a type: its initials in a coloured square (no images to fetch). */
export function typeMark(typeId, name) {
  const initials = String(name ?? typeId).split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
  let hue = 0;
  for (const c of String(typeId)) hue = (hue * 31 + c.charCodeAt(0)) % 12;
  return h('span', { class: `type-mark hue-${hue}`, 'aria-hidden': 'true' }, initials);
}

/** `#/w/{ws}/integrations`. */
export async function integrationsPage(main, [slug]) {
  const [ws, integrations, types, projects] = await Promise.all([
    api('GET', `/workspaces/${seg(slug)}`),
    all(`/workspaces/${seg(slug)}/integrations`),
    integrationTypes(),
    all(`/workspaces/${seg(slug)}/projects`),
  ]);
  const typeNames = new Map(types.map((t) => [t.type, t.name]));
  const projectNames = new Map(projects.map((p) => [p.slug, p.name]));
  const base = `#/w/${seg(ws.slug)}`;
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, base], ['Integrations', `${base}/integrations`]]),
    pageTitle(`Integrations of ${ws.name}`, h('a', { class: 'button', href: `${base}/integrations/new` }, 'New integration')),
    workspaceTabs(ws.slug, `${base}/integrations`),
    integrations.length
      ? table(['Integration', 'Type', 'Scope', 'Enabled', 'Last run', 'Failures'], integrations.map((i) => {
        const d = i.delivery ?? {};
        return h('tr', { 'data-slug': i.slug },
          h('th', { scope: 'row' }, h('a', { href: `#/i/${seg(i.slug)}` }, i.name)),
          h('td', {}, h('span', { class: 'type' }, typeMark(i.type, typeNames.get(i.type)), typeNames.get(i.type) ?? i.type)),
          h('td', {}, scopeText(i, projectNames)),
          h('td', {}, i.enabled ? badge('enabled', 'enabled') : badge('disabled', 'disabled')),
          h('td', { class: 'last-run' }, d.lastRunStatus ? [badge(d.lastRunStatus), ' ', time(d.lastRunAt)] : h('span', { class: 'muted' }, 'never')),
          h('td', { class: d.failed ? 'failures bad' : 'failures' }, String(d.failed ?? 0)));
      }), { class: 'integrations' })
      : h('p', { class: 'empty' }, 'No integrations yet. An integration tells people about changes or pushes values where your code runs.'),
  );
}

/** `#/w/{ws}/integrations/new`: pick a type. */
export async function newIntegrationPage(main, [slug]) {
  const [ws, types] = await Promise.all([api('GET', `/workspaces/${seg(slug)}`), integrationTypes()]);
  const base = `#/w/${seg(ws.slug)}`;
  const byCategory = new Map();
  for (const t of types) {
    if (!byCategory.has(t.category)) byCategory.set(t.category, []);
    byCategory.get(t.category).push(t);
  }
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, base], ['Integrations', `${base}/integrations`], ['New', `${base}/integrations/new`]]),
    pageTitle('New integration'),
    h('p', {}, 'Choose what kind of integration to add. Its form is generated from the type\u2019s settings schema.'),
    [...byCategory.entries()].map(([category, list]) => [
      h('h2', {}, category === 'infrastructure' ? 'Infrastructure (push values)' : category === 'communication' ? 'Communication (tell people)' : category),
      h('ul', { class: 'cards' }, list.map((t) => h('li', { class: 'card type-card' },
        h('h3', {}, typeMark(t.type, t.name), ' ', h('a', { href: `${base}/integrations/new/${seg(t.type)}`, 'data-type': t.type }, t.name)),
        h('p', {}, t.description)))),
    ]),
  );
}
