// Create or edit an integration with a form generated from its type's descriptor: settings from
// the metadata JSON Schema, events from permittedEvents (grouped by source), actions from
// permittedActions, project and environment pickers that follow the scope rule.

import { all, api, integrationTypes, seg } from './api.mjs';
import { append, announce, clear, crumbs, h, pageTitle, problemText, richText, uid } from './dom.mjs';
import { checkScope, draftFromMetadata, mergePatch, metadataFromDraft, pointerSegments, humanize, typeModel } from './form-model.mjs';
import { clearErrors, errorSlot, renderFields, showErrors } from './form-view.mjs';
import { typeMark } from './page-integrations.mjs';

/** `#/w/{ws}/integrations/new/{type}` (create) or `#/i/{slug}/edit` (edit). */
export async function integrationFormPage(main, { workspace, type, slug }, { go }) {
  const existing = slug ? await api('GET', `/integrations/${seg(slug)}`) : null;
  const wsSlug = existing ? existing.workspace : workspace;
  const typeId = existing ? existing.type : type;
  const [ws, types, projects] = await Promise.all([
    api('GET', `/workspaces/${seg(wsSlug)}`),
    integrationTypes(),
    all(`/workspaces/${seg(wsSlug)}/projects`),
  ]);
  const descriptor = types.find((t) => t.type === typeId);
  const base = `#/w/${seg(ws.slug)}`;
  const trail = [['Workspaces', '#/'], [ws.name, base], ['Integrations', `${base}/integrations`]];
  if (!descriptor) {
    append(main, crumbs(trail), pageTitle('Unknown integration type'),
      h('p', { class: 'error-box', role: 'alert' }, `This server has no integration type \u201c${typeId}\u201d.`),
      h('p', {}, h('a', { href: `${base}/integrations/new` }, 'Choose a type')));
    return;
  }
  const model = typeModel(descriptor);
  const configured = new Set(Object.entries(existing?.secretFields ?? {}).filter(([, s]) => s.configured).map(([p]) => p));
  const state = {
    name: existing?.name ?? '',
    enabled: existing?.enabled ?? true,
    projectSlug: existing?.projectSlug ?? '',
    environmentSlugs: [...(existing?.environmentSlugs ?? [])],
    notifyOn: new Set(existing?.notifyOn ?? []),
    actions: new Set(existing?.actions ?? model.actions.filter((a) => a.name === 'upsert').map((a) => a.name)),
    draft: draftFromMetadata(model.fields, existing?.metadata ?? {}),
    live: true,
  };

  // General
  const nameId = uid('name');
  const nameInput = h('input', {
    id: nameId, name: 'name', type: 'text', value: state.name, autocomplete: 'off', 'aria-required': 'true',
    'aria-describedby': `${nameId}-err`, oninput: (e) => { state.name = e.target.value; },
  });
  const enabledId = uid('enabled');
  const general = h('fieldset', { class: 'section' }, h('legend', {}, 'General'),
    h('div', { class: 'field' }, h('label', { for: nameId }, 'Name', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')), nameInput, errorSlot('/name', `${nameId}-err`)),
    h('div', { class: 'field field-checkbox' }, h('div', { class: 'check' },
      h('input', { id: enabledId, type: 'checkbox', checked: state.enabled, onchange: (e) => { state.enabled = e.target.checked; } }),
      h('label', { for: enabledId }, 'Enabled (receives events)')), errorSlot('/enabled')),
    errorSlot('/type'));

  // Scope
  const projectId = uid('project');
  const projectSelect = h('select', {
    id: projectId, name: 'projectSlug', disabled: Boolean(existing), 'aria-describedby': `${projectId}-hint ${projectId}-err`,
    'aria-required': model.scope.projectRequired ? 'true' : null,
  },
  h('option', { value: '' }, model.scope.projectRequired ? '\u2014 choose a project \u2014' : '\u2014 whole workspace \u2014'),
  projects.map((p) => h('option', { value: p.slug }, p.name)));
  projectSelect.value = state.projectSlug;
  const envBox = h('div', { class: 'env-picker' });
  // Sync settings (infrastructure types): where each environment's values go at the target.
  const syncBefore = {
    keyTemplate: existing?.sync?.keyTemplate ?? '{{key}}',
    onConflict: existing?.sync?.onConflict ?? 'skip',
    targets: { ...(existing?.sync?.targets ?? {}) },
  };
  const syncState = structuredClone(syncBefore);
  const targetsBox = h('div', { class: 'quick-fields' });
  let envNames = new Map();
  const drawTargets = () => {
    clear(targetsBox);
    if (!model.infrastructure) return;
    if (!state.environmentSlugs.length) {
      targetsBox.append(h('p', { class: 'muted' }, 'Choose environments above to map them to targets.'));
      return;
    }
    for (const slug of state.environmentSlugs) {
      const id = uid('target');
      const pointer = `/sync/targets/${slug.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      targetsBox.append(h('div', { class: 'field' },
        h('label', { for: id }, `Target of ${envNames.get(slug) ?? slug}`),
        h('input', {
          id, type: 'text', value: syncState.targets[slug] ?? '', autocomplete: 'off', spellcheck: 'false',
          placeholder: 'the provider\u2019s default', 'aria-describedby': `${id}-err`,
          oninput: (e) => { syncState.targets[slug] = e.target.value; },
        }),
        errorSlot(pointer, `${id}-err`)));
    }
  };
  const drawEnvironments = async () => {
    clear(envBox);
    if (!state.projectSlug) {
      envBox.append(h('p', { class: 'muted' }, 'Choose a project to narrow to its environments.'));
      return;
    }
    const project = await api('GET', `/projects/${seg(state.projectSlug)}`);
    const envs = project.environments ?? [];
    envNames = new Map(envs.map((e) => [e.slug, e.name]));
    state.environmentSlugs = state.environmentSlugs.filter((e) => envs.some((x) => x.slug === e));
    if (!envs.length) {
      envBox.append(h('p', { class: 'muted' }, 'This project has no environments yet.'));
      return;
    }
    if (model.scope.environmentPicker === 'single') {
      const id = uid('env');
      const select = h('select', {
        id, name: 'environment', 'aria-required': 'true',
        onchange: (e) => {
          state.environmentSlugs = e.target.value ? [e.target.value] : [];
          drawTargets();
        },
      }, h('option', { value: '' }, '\u2014 choose an environment \u2014'), envs.map((e) => h('option', { value: e.slug }, e.name)));
      select.value = state.environmentSlugs[0] ?? '';
      envBox.append(h('label', { for: id }, 'Environment'), select);
      return;
    }
    envBox.append(h('div', { class: 'checks' }, envs.map((e) => {
      const id = uid('env');
      return h('div', { class: 'check' },
        h('input', {
          id, type: 'checkbox', name: 'environment', value: e.slug, checked: state.environmentSlugs.includes(e.slug),
          onchange: (ev) => {
            state.environmentSlugs = ev.target.checked
              ? [...state.environmentSlugs, e.slug]
              : state.environmentSlugs.filter((x) => x !== e.slug);
            drawTargets();
          },
        }),
        h('label', { for: id }, e.name));
    })));
  };
  projectSelect.addEventListener('change', async (e) => {
    state.projectSlug = e.target.value;
    state.environmentSlugs = [];
    await drawEnvironments().catch((err) => envBox.append(h('p', { class: 'error-box' }, problemText(err))));
    drawTargets();
  });
  await drawEnvironments();
  drawTargets();
  const scope = h('fieldset', { class: 'section' }, h('legend', {}, 'Scope'),
    h('p', { class: 'hint', id: `${projectId}-hint` }, model.scope.hint, existing ? ' The project cannot change after creation.' : ''),
    h('div', { class: 'field' }, h('label', { for: projectId }, 'Project', model.scope.projectRequired ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), projectSelect, errorSlot('/projectSlug', `${projectId}-err`)),
    h('fieldset', { class: 'field' }, h('legend', {}, model.scope.environmentPicker === 'single' ? 'Environment' : 'Environments',
      model.scope.environmentsRequired ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), envBox, errorSlot('/environmentSlugs')));

  // Events
  const eventBoxes = [];
  const events = h('fieldset', { class: 'section events' }, h('legend', {}, 'Events', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')),
    h('p', { class: 'hint' }, 'The changes this integration hears about.'),
    errorSlot('/notifyOn'),
    h('div', { class: 'event-groups' }, model.eventGroups.map((group) => {
      const boxes = group.events.map((event) => {
        const id = uid('ev');
        const input = h('input', {
          id, type: 'checkbox', name: 'notifyOn', value: event.name, checked: state.notifyOn.has(event.name),
          onchange: (e) => (e.target.checked ? state.notifyOn.add(event.name) : state.notifyOn.delete(event.name)),
        });
        eventBoxes.push(input);
        return h('div', { class: 'check' }, input, h('label', { for: id, title: event.name }, event.label));
      });
      const setAll = (on) => () => {
        for (const box of boxes.map((b) => b.firstChild)) {
          box.checked = on;
          box.dispatchEvent(new Event('change'));
        }
      };
      return h('fieldset', { class: 'event-group' }, h('legend', {}, group.label),
        h('div', { class: 'checks' }, boxes),
        h('div', { class: 'group-buttons' },
          h('button', { type: 'button', class: 'link', onclick: setAll(true), 'aria-label': `Select all ${group.label} events` }, 'all'),
          ' \u00b7 ',
          h('button', { type: 'button', class: 'link', onclick: setAll(false), 'aria-label': `Clear ${group.label} events` }, 'none')));
    })));

  // Actions
  const actions = model.actions.length
    ? h('fieldset', { class: 'section' }, h('legend', {}, 'Actions'),
      h('p', { class: 'hint' }, 'What it may do at the target besides being told.'),
      errorSlot('/actions'),
      h('div', { class: 'checks' }, model.actions.map((action) => {
        const id = uid('act');
        return h('div', { class: 'check' },
          h('input', {
            id, type: 'checkbox', name: 'actions', value: action.name, checked: state.actions.has(action.name),
            onchange: (e) => (e.target.checked ? state.actions.add(action.name) : state.actions.delete(action.name)),
          }),
          h('label', { for: id }, action.label, action.hint ? h('span', { class: 'muted' }, ` \u2014 ${action.hint}`) : null));
      })))
    : null;

  const templateId = uid('template');
  const conflictId = uid('conflict');
  const conflict = h('select', {
    id: conflictId, 'aria-describedby': `${conflictId}-hint ${conflictId}-err`,
    onchange: (e) => { syncState.onConflict = e.target.value; },
  },
  h('option', { value: 'skip' }, 'skip \u2014 leave keys keywire did not write, and report them'),
  h('option', { value: 'adopt' }, 'adopt \u2014 overwrite such keys and own them'));
  conflict.value = syncState.onConflict;
  const syncSection = model.infrastructure
    ? h('fieldset', { class: 'section' }, h('legend', {}, 'Sync'),
      h('p', { class: 'hint' }, 'How values are written at the target. A sync makes the target match the chosen environments and only changes keys keywire wrote.'),
      errorSlot('/sync'),
      h('div', { class: 'quick-fields' },
        h('div', { class: 'field' },
          h('label', { for: templateId }, 'Key template'),
          h('input', {
            id: templateId, type: 'text', value: syncState.keyTemplate, autocomplete: 'off', spellcheck: 'false',
            'aria-describedby': `${templateId}-hint ${templateId}-err`,
            oninput: (e) => { syncState.keyTemplate = e.target.value; },
          }),
          h('p', { class: 'hint', id: `${templateId}-hint` }, richText('The key written at the target: `{{key}}` is the entry\u2019s key, e.g. `APP_{{key}}`.')),
          errorSlot('/sync/keyTemplate', `${templateId}-err`)),
        h('div', { class: 'field' },
          h('label', { for: conflictId }, 'Keys that exist at the target'),
          conflict,
          h('p', { class: 'hint', id: `${conflictId}-hint` }, 'What to do with a key keywire did not write.'),
          errorSlot('/sync/onConflict', `${conflictId}-err`))),
      h('fieldset', { class: 'field' }, h('legend', {}, 'Targets'),
        h('p', { class: 'hint' }, 'The provider\u2019s target of each environment (for example a Vercel environment, a GitLab environment scope, a GitHub environment).'),
        errorSlot('/sync/targets'),
        targetsBox))
    : null;

  /** The `sync` object to send: only what differs from before (nothing on a server without it). */
  const syncChanges = () => {
    if (!model.infrastructure) return null;
    const out = {};
    if (syncState.keyTemplate !== syncBefore.keyTemplate) out.keyTemplate = syncState.keyTemplate;
    if (syncState.onConflict !== syncBefore.onConflict) out.onConflict = syncState.onConflict;
    const targets = Object.fromEntries(state.environmentSlugs
      .filter((slug) => (syncState.targets[slug] ?? '').trim() !== '')
      .map((slug) => [slug, syncState.targets[slug].trim()]));
    // Targets of environments the integration drops go with them on the server.
    const sorted = (o) => JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
    const kept = Object.fromEntries(Object.entries(syncBefore.targets).filter(([slug]) => state.environmentSlugs.includes(slug)));
    if (sorted(targets) !== sorted(kept)) out.targets = targets;
    return Object.keys(out).length ? out : null;
  };

  // Settings (metadata)
  const settings = h('fieldset', { class: 'section settings' }, h('legend', {}, 'Settings'),
    h('p', { class: 'hint' }, existing
      ? 'Credential fields are write-only: they show \u201cconfigured\u201d and keep their value unless you type a new one.'
      : 'Credential fields are write-only: keywire never shows them again after saving.'),
    errorSlot('/metadata'),
    renderFields(model.fields, state.draft, { base: '/metadata', configured }));

  const liveId = uid('live');
  const summary = h('div', { class: 'error-box', role: 'alert', tabindex: '-1', hidden: true, 'data-error-summary': '' });
  const report = h('div', { class: 'report', 'aria-live': 'polite' });
  const saveButton = h('button', { type: 'submit' }, existing ? 'Save changes' : 'Create integration');
  const validateButton = h('button', { type: 'button', class: 'secondary' }, 'Validate');

  /** The request body (create) or PATCH body (edit), and local problems. */
  const request = () => {
    const { metadata, errors } = metadataFromDraft(model.fields, state.draft);
    const scopeProblem = checkScope(model.scope, state.projectSlug, state.environmentSlugs);
    if (scopeProblem) errors.push(scopeProblem);
    const notifyOn = model.eventGroups.flatMap((g) => g.events.map((e) => e.name)).filter((e) => state.notifyOn.has(e));
    const chosenActions = model.actions.map((a) => a.name).filter((a) => state.actions.has(a));
    if (existing) {
      const patch = {
        name: state.name,
        notifyOn,
        actions: chosenActions,
        enabled: state.enabled,
      };
      if (existing.projectSlug) patch.environmentSlugs = state.environmentSlugs;
      const metaPatch = mergePatch(existing.metadata ?? {}, metadata);
      if (Object.keys(metaPatch).length) patch.metadata = metaPatch;
      const sync = syncChanges();
      if (sync) patch.sync = sync;
      return { body: patch, errors };
    }
    const body = { name: state.name, type: model.type, notifyOn, actions: chosenActions, metadata, enabled: state.enabled };
    if (state.projectSlug) {
      body.projectSlug = state.projectSlug;
      body.environmentSlugs = state.environmentSlugs;
    }
    const sync = syncChanges();
    if (sync) body.sync = sync;
    return { body, errors };
  };

  const form = h('form', {
    class: 'integration-form',
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      clear(report);
      const { body, errors } = request();
      if (errors.length) {
        showErrors(form, errors, { detail: 'Some fields need attention.' });
        return;
      }
      saveButton.disabled = true;
      try {
        const query = state.live ? {} : { validate: false };
        const saved = existing
          ? await api('PATCH', `/integrations/${seg(existing.slug)}`, { body, query })
          : await api('POST', `/workspaces/${seg(ws.slug)}/integrations`, { body, query });
        announce(`Integration ${saved.name} ${existing ? 'saved' : 'created'}.`);
        const generated = Object.entries(saved.generatedSecrets ?? {});
        if (generated.length) showGenerated(main, model, saved, generated);
        else go(`/i/${seg(saved.slug)}`);
      } catch (err) {
        let errs = err.errors ?? [];
        if (!errs.length && err.status === 409 && !existing) errs = [{ pointer: '/name', detail: err.detail }];
        const placed = showErrors(form, errs, { detail: errs.length ? null : problemText(err) });
        if (placed && placed === errs.length) {
          summary.append(h('p', {}, placed === 1 ? 'The server refused one field: see the message next to it.' : `The server refused ${placed} fields: see the messages next to them.`));
          summary.hidden = false;
        }
      } finally {
        saveButton.disabled = false;
      }
    },
  },
  general, scope, events, actions, syncSection, settings,
  h('div', { class: 'field field-checkbox' }, h('div', { class: 'check' },
    h('input', { id: liveId, type: 'checkbox', checked: state.live, onchange: (e) => { state.live = e.target.checked; } }),
    h('label', { for: liveId }, 'Check the connection when saving (the type\u2019s live check)'))),
  summary,
  report,
  h('div', { class: 'actions' }, saveButton, validateButton,
    h('a', { class: 'button secondary', href: existing ? `#/i/${seg(existing.slug)}` : `${base}/integrations` }, 'Cancel')));

  validateButton.addEventListener('click', async () => {
    clearErrors(form);
    clear(report);
    const { body, errors } = request();
    if (errors.length) {
      showErrors(form, errors, { detail: 'Some fields need attention before the server can check them.' });
      return;
    }
    validateButton.disabled = true;
    try {
      const payload = existing ? { slug: existing.slug, patch: body } : { workspace: ws.slug, ...body };
      const result = await api('POST', '/integrations/validate', { body: payload });
      const prefix = existing ? '/patch' : '';
      const fieldErrors = result.checks.flatMap((c) => (c.errors ?? []).map((e) => ({
        ...e, pointer: e.pointer?.startsWith(prefix) ? e.pointer.slice(prefix.length) : e.pointer,
      })));
      if (fieldErrors.length) showErrors(form, fieldErrors);
      report.append(
        h('h2', {}, result.valid ? 'All checks passed' : 'Some checks failed'),
        h('ul', { class: 'checks-report' }, result.checks.map((c) => h('li', { class: c.passed ? 'ok' : c.skipped ? 'skipped' : 'bad' },
          h('span', { class: 'mark', 'aria-hidden': 'true' }, c.passed ? '\u2713' : c.skipped ? '\u2013' : '\u2717'),
          h('strong', {}, c.name), ' ', c.passed ? 'passed' : c.skipped ? 'skipped' : 'failed',
          c.detail ? [': ', richText(c.detail)] : null))));
      report.className = `report ${result.valid ? 'report-ok' : 'report-bad'}`;
    } catch (err) {
      showErrors(form, err.errors ?? [], { detail: problemText(err) });
    } finally {
      validateButton.disabled = false;
    }
  });

  const title = existing ? `Edit ${existing.name}` : `New ${descriptor.name} integration`;
  append(main, 
    crumbs(existing
      ? [...trail, [existing.name, `#/i/${seg(existing.slug)}`], ['Edit', `#/i/${seg(existing.slug)}/edit`]]
      : [...trail, ['New', `${base}/integrations/new`], [descriptor.name, `${base}/integrations/new/${seg(typeId)}`]]),
    pageTitle(title),
    h('p', { class: 'type-line' }, typeMark(descriptor.type, descriptor.name), ' ', h('strong', {}, descriptor.name), ` (${descriptor.category}) \u2014 `, richText(descriptor.description)),
    form,
  );
}

/**
 * Credentials keywire generated for the integration (`generatedSecrets`, by pointer into
 * metadata): shown this once, in place of the form, until the user moves on.
 */
function showGenerated(main, model, saved, generated) {
  const labels = new Map();
  const walk = (fields) => fields.forEach((f) => {
    labels.set(f.pointer, f.label);
    if (f.kind === 'object') walk(f.fields);
  });
  walk(model.fields);
  const title = h('h2', { tabindex: '-1' }, generated.length === 1 ? 'Store this credential now' : 'Store these credentials now');
  clear(main);
  append(main,
    pageTitle(`${saved.name} is ready`),
    h('section', { class: 'card generated', 'aria-labelledby': 'generated-h' },
      title,
      h('p', {}, generated.length === 1
        ? 'keywire generated it for this integration. It is shown only this once: copy it now; afterwards it only says \u201cconfigured\u201d.'
        : 'keywire generated them for this integration. They are shown only this once: copy them now; afterwards they only say \u201cconfigured\u201d.'),
      h('dl', { class: 'settings-list' }, generated.flatMap(([pointer, value]) => {
        const copy = h('button', {
          type: 'button',
          class: 'small secondary',
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(value);
              announce('Copied.');
            } catch {
              announce('Copy failed: select the text and copy it by hand.', 'error');
            }
          },
        }, 'Copy');
        return [
          h('dt', {}, labels.get(pointer) ?? pointerSegments(pointer).map(humanize).join(' \u203a ')),
          h('dd', {}, h('code', { class: 'secret-value', 'data-generated': pointer }, value), ' ', copy),
        ];
      })),
      h('p', {}, h('a', { class: 'button', href: `#/i/${seg(saved.slug)}` }, 'I have stored it \u2014 continue'))));
  title.id = 'generated-h';
  title.focus();
}
