// A project: its environments, secrets and variables (values hidden until revealed, with
// version history and rollback).

import { all, api, seg } from './api.mjs';
import { append, announce, clear, crumbs, errorBox, h, pageTitle, problemText, table, tabs, time, uid } from './dom.mjs';
import { clearErrors, errorSlot, quickForm, showErrors } from './form-view.mjs';
import { escapeSegment } from './form-model.mjs';

/** A button that asks once more before acting (no modal dialog). */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer = null;
  const button = h('button', {
    type: 'button',
    class: 'small danger',
    ...attrs,
    onclick: async () => {
      if (!armed) {
        armed = true;
        button.textContent = confirmLabel;
        timer = setTimeout(() => {
          armed = false;
          button.textContent = label;
        }, 5000);
        return;
      }
      clearTimeout(timer);
      armed = false;
      button.textContent = label;
      button.disabled = true;
      try {
        await action();
      } catch (err) {
        announce(problemText(err), 'error');
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return button;
}

/** `#/p/{project}/{secrets|variables|environments}`. */
export async function projectPage(main, [slug, tab], { go }) {
  const project = await api('GET', `/projects/${seg(slug)}`);
  const ws = await api('GET', `/workspaces/${seg(project.workspace)}`);
  const base = `#/p/${seg(project.slug)}`;
  const environments = project.environments ?? [];
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, `#/w/${seg(ws.slug)}`], [project.name, base]]),
    pageTitle(project.name, h('code', { class: 'slug' }, project.slug)),
    project.description ? h('p', {}, project.description) : null,
    tabs([
      ['Secrets', `${base}/secrets`],
      ['Variables', `${base}/variables`],
      ['Environments', `${base}/environments`],
    ], `${base}/${tab}`, 'Project'),
  );
  if (tab === 'environments') {
    environmentsSection(main, project, environments, go);
  } else {
    await entriesSection(main, project, environments, tab);
  }
}

function environmentsSection(main, project, environments, go) {
  append(main, 
    h('h2', {}, 'Environments'),
    environments.length
      ? table(['Environment', 'Slug', 'Description', 'Created', ''], environments.map((e) =>
        h('tr', {},
          h('td', {}, e.name),
          h('td', {}, h('code', {}, e.slug)),
          h('td', {}, e.description ?? ''),
          h('td', {}, time(e.createdAt)),
          h('td', {}, confirmButton('Delete', `Delete ${e.name}?`, async () => {
            await api('DELETE', `/projects/${seg(project.slug)}/environments/${seg(e.slug)}`);
            announce(`Environment ${e.name} deleted.`);
            go(`/p/${seg(project.slug)}/environments`);
          }, { 'aria-label': `Delete environment ${e.name}` })))))
      : h('p', { class: 'empty' }, 'No environments yet. Secrets and variables hold one value per environment: add one first.'),
    quickForm({
      title: 'New environment',
      inputs: [
        { name: 'name', label: 'Name', required: true },
        { name: 'description', label: 'Description' },
      ],
      submitLabel: 'Add environment',
      submit: async ({ name, description }) => {
        const body = { name };
        if (description.trim()) body.description = description;
        const env = await api('POST', `/projects/${seg(project.slug)}/environments`, { body });
        announce(`Environment ${env.name} added.`);
        go(`/p/${seg(project.slug)}/environments`);
      },
    }),
  );
}

async function entriesSection(main, project, environments, kind) {
  const noun = kind === 'secrets' ? 'secret' : 'variable';
  const path = `/projects/${seg(project.slug)}/${kind}`;
  const listBox = h('div', {});
  const editor = h('div', {});
  const draw = async () => {
    const entries = await all(path);
    clear(listBox);
    if (!entries.length) {
      listBox.append(h('p', { class: 'empty' }, `No ${kind} yet.`));
      return;
    }
    const rows = [];
    for (const entry of entries) {
      const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colspan: environments.length + 3 }));
      const cell = detail.firstChild;
      const show = (builder) => async () => {
        if (!detail.hidden && cell.dataset.showing === builder.name) {
          detail.hidden = true;
          return;
        }
        clear(cell);
        cell.dataset.showing = builder.name;
        detail.hidden = false;
        try {
          cell.append(await builder());
        } catch (err) {
          cell.append(errorBox(err));
        }
      };
      const reveal = async function values() {
        const got = await api('GET', `${path}/${seg(entry.key)}`, { query: { reveal: true } });
        return h('dl', { class: 'values' }, Object.entries(got.environments).flatMap(([env, v]) => [
          h('dt', {}, env, ' ', h('span', { class: 'muted' }, `v${v.version}`)),
          h('dd', {}, h('code', { class: 'secret-value' }, v.value ?? '')),
        ]));
      };
      const history = async function versions() {
        return historyPanel(path, entry, environments, draw);
      };
      rows.push(h('tr', { 'data-key': entry.key },
        h('th', { scope: 'row' }, h('code', {}, entry.key)),
        h('td', {}, entry.note ?? ''),
        environments.map((e) => {
          const v = entry.environments[e.slug];
          return h('td', {}, v ? [h('span', { class: 'version' }, `v${v.version}`), ' ', time(v.updatedAt)] : h('span', { class: 'muted' }, '\u2014'));
        }),
        h('td', { class: 'buttons' },
          h('button', { type: 'button', class: 'small secondary', 'aria-label': `Reveal ${entry.key}`, onclick: show(reveal) }, 'Reveal'),
          h('button', { type: 'button', class: 'small secondary', 'aria-label': `History of ${entry.key}`, onclick: show(history) }, 'History'),
          h('button', {
            type: 'button', class: 'small secondary', 'aria-label': `Change ${entry.key}`,
            onclick: () => {
              clear(editor).append(setForm(entry));
              editor.querySelector('input')?.focus();
            },
          }, 'Change'),
          confirmButton('Delete', 'Confirm delete', async () => {
            await api('DELETE', `${path}/${seg(entry.key)}`);
            announce(`${entry.key} deleted.`);
            await draw();
          }, { 'aria-label': `Delete ${entry.key}` }))));
      rows.push(detail);
    }
    listBox.append(table(['Key', 'Note', ...environments.map((e) => e.name), ''], rows, { class: 'entries' }));
  };

  const setForm = (entry) => {
    const keyId = uid('key');
    const keyInput = h('input', { id: keyId, name: 'key', type: 'text', value: entry?.key ?? '', autocomplete: 'off', spellcheck: 'false', 'aria-required': 'true' });
    const noteId = uid('note');
    const noteInput = h('input', { id: noteId, name: 'note', type: 'text', value: entry?.note ?? '', autocomplete: 'off' });
    const valueInputs = environments.map((e) => {
      const id = uid(`value-${e.slug}`);
      const input = h('input', {
        id, name: `value-${e.slug}`, type: kind === 'secrets' ? 'password' : 'text', autocomplete: 'new-password', spellcheck: 'false',
        placeholder: entry?.environments[e.slug] ? `unchanged (v${entry.environments[e.slug].version})` : 'no value',
      });
      const err = errorSlot(`/values/${escapeSegment(e.slug)}`, `${id}-err`);
      input.setAttribute('aria-describedby', err.id);
      return { env: e, input, row: h('div', { class: 'field' }, h('label', { for: id }, `Value in ${e.name}`), input, err) };
    });
    const summary = h('div', { class: 'error-box', role: 'alert', tabindex: '-1', hidden: true, 'data-error-summary': '' });
    const form = h('form', {
      class: 'card',
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        const key = keyInput.value.trim();
        const values = {};
        for (const { env, input } of valueInputs) if (input.value !== '') values[env.slug] = input.value;
        const local = [];
        if (!key) local.push({ pointer: '/key', detail: 'required' });
        if (!Object.keys(values).length) local.push({ pointer: '/values', detail: 'type a value for at least one environment' });
        if (local.length) {
          showErrors(form, local);
          return;
        }
        const body = { values };
        if (noteInput.value.trim() !== (entry?.note ?? '')) body.note = noteInput.value.trim() || null;
        try {
          const saved = await api('PUT', `${path}/${seg(key)}`, { body });
          announce(`${saved.key} saved.`);
          clear(editor).append(setForm());
          await draw();
        } catch (err) {
          showErrors(form, err.errors ?? [], { detail: err.errors?.length ? null : problemText(err) });
        }
      },
    },
    h('h2', {}, entry ? `Change ${entry.key}` : `New ${noun}`),
    h('div', { class: 'quick-fields' },
      h('div', { class: 'field' }, h('label', { for: keyId }, 'Key', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')), keyInput, errorSlot('/key')),
      h('div', { class: 'field' }, h('label', { for: noteId }, 'Note'), noteInput, errorSlot('/note'))),
    h('fieldset', { class: 'values-set' }, h('legend', {}, 'Values'),
      environments.length ? null : h('p', { class: 'empty' }, 'The project has no environments yet.'),
      errorSlot('/values'),
      h('div', { class: 'quick-fields' }, valueInputs.map((v) => v.row))),
    summary,
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, entry ? 'Save' : `Add ${noun}`),
      entry ? h('button', { type: 'button', class: 'secondary', onclick: () => clear(editor).append(setForm()) }, 'Cancel') : null));
    return form;
  };

  await draw();
  editor.append(setForm());
  append(main, h('h2', {}, kind === 'secrets' ? 'Secrets' : 'Variables'), listBox, editor);
}

async function historyPanel(path, entry, environments, redraw) {
  const envs = environments.filter((e) => entry.environments[e.slug]);
  const selectId = uid('hist-env');
  const select = h('select', { id: selectId }, envs.map((e) => h('option', { value: e.slug }, e.name)));
  const out = h('div', {});
  let reveal = false;
  const revealButton = h('button', { type: 'button', class: 'small secondary', 'aria-pressed': 'false' }, 'Reveal values');
  const load = async () => {
    clear(out);
    const env = select.value;
    if (!env) {
      out.append(h('p', { class: 'empty' }, 'No values yet.'));
      return;
    }
    const versions = await all(`${path}/${seg(entry.key)}/versions`, { environment: env, reveal: reveal || undefined });
    const current = entry.environments[env]?.version;
    out.append(table(['Version', 'Created', 'By', 'Value', ''], versions.map((v) =>
      h('tr', {},
        h('td', {}, `v${v.version}`, v.version === current ? [' ', h('span', { class: 'tag tag-ok' }, 'current')] : null),
        h('td', {}, time(v.createdAt)),
        h('td', {}, h('code', { title: v.createdBy ?? '' }, (v.createdBy ?? '').slice(0, 8))),
        h('td', {}, reveal ? h('code', { class: 'secret-value' }, v.value ?? '') : h('span', { class: 'muted' }, 'hidden')),
        h('td', {}, v.version === current ? null : confirmButton('Roll back', `Roll back to v${v.version}?`, async () => {
          await api('POST', `${path}/${seg(entry.key)}/rollback`, { body: { environment: env, version: v.version } });
          announce(`${entry.key} in ${env} rolled back to v${v.version}.`);
          await redraw();
        })))), { class: 'versions' }));
  };
  select.addEventListener('change', () => load().catch((err) => clear(out).append(errorBox(err))));
  revealButton.addEventListener('click', () => {
    reveal = !reveal;
    revealButton.setAttribute('aria-pressed', String(reveal));
    revealButton.textContent = reveal ? 'Hide values' : 'Reveal values';
    load().catch((err) => clear(out).append(errorBox(err)));
  });
  await load();
  return h('div', { class: 'history' },
    h('h3', {}, `History of ${entry.key}`),
    h('div', { class: 'inline' }, h('label', { for: selectId }, 'Environment'), select, revealButton),
    out);
}
