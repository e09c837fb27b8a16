// Draws a form model (form-model.mjs) as native, labelled controls bound to a draft, and shows
// problems (`errors[].pointer`) next to the control whose pointer they name.

import { h, clear, richText, uid } from './dom.mjs';
import { draftOf, errorTarget, escapeSegment, pointerWithin } from './form-model.mjs';

/**
 * An error slot for `pointer` (a string, or a function for pointers that change, such as map
 * keys). Errors whose pointer is this one or below it land here unless a deeper slot exists.
 */
export function errorSlot(pointer, id = uid('err')) {
  const slot = h('div', { class: 'field-error', id, hidden: true, 'data-error-slot': '' });
  slot.pointerOf = typeof pointer === 'function' ? pointer : () => pointer;
  return slot;
}

/**
 * Renders the metadata fields bound to `draft` (key → draft). `opts.base` is the pointer of
 * metadata in the request body (`/metadata`); `opts.configured` the credential pointers (relative
 * to metadata) already stored, shown as "configured".
 */
export function renderFields(fields, draft, opts = {}) {
  const base = opts.base ?? '/metadata';
  const box = h('div', { class: 'fields' });
  for (const field of fields) {
    const key = field.key ?? '';
    const ptr = () => (field.pointer === '' ? base : `${base}/${escapeSegment(key)}`);
    box.append(renderField(field, draft, key, ptr, opts));
  }
  return box;
}

function requiredMark(field, configured) {
  return field.required && !configured ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null;
}

function configuredNote(configured) {
  return configured
    ? h('p', { class: 'hint' }, h('span', { class: 'tag tag-ok' }, 'configured'), ' Stored values are not shown; leave this empty to keep them.')
    : null;
}

function hintOf(field, id) {
  const text = field.description || '';
  return text ? h('div', { class: 'hint', id }, richText(text)) : null;
}

function renderField(field, holder, key, ptr, opts) {
  const id = uid('m');
  const hintId = `${id}-hint`;
  const err = errorSlot(ptr, `${id}-err`);
  const hint = hintOf(field, hintId);
  const describedBy = [hint ? hintId : null, err.id].filter(Boolean).join(' ');
  const get = () => holder[key];
  const set = (v) => {
    holder[key] = v;
  };
  const configured = field.secret && opts.configured?.has(field.pointer);

  switch (field.kind) {
    case 'text':
    case 'password':
    case 'integer':
    case 'number': {
      const attrs = {
        id,
        name: field.pointer,
        value: get() ?? '',
        autocomplete: field.kind === 'password' ? 'new-password' : 'off',
        spellcheck: 'false',
        'aria-describedby': describedBy,
        'aria-required': field.required && !configured ? 'true' : null,
        oninput: (e) => set(e.target.value),
      };
      let input;
      if (field.kind === 'password') {
        input = h('input', { ...attrs, type: 'password', placeholder: configured ? 'configured \u2014 leave empty to keep' : null });
      } else if (field.multiline) {
        input = h('textarea', { ...attrs, rows: 4 });
      } else {
        input = h('input', {
          ...attrs,
          type: 'text',
          inputmode: field.kind === 'integer' ? 'numeric' : field.kind === 'number' ? 'decimal' : field.format === 'uri' ? 'url' : field.format === 'email' ? 'email' : null,
          placeholder: field.example !== undefined ? String(field.example) : null,
        });
      }
      // The state of a credential is part of the description, not of the name.
      const tags = configured ? h('span', { class: 'tag tag-ok', id: `${id}-tag` }, 'configured')
        : field.kind === 'password' ? h('span', { class: 'tag', id: `${id}-tag` }, 'write-only') : null;
      if (tags) input.setAttribute('aria-describedby', `${tags.id} ${describedBy}`);
      const label = h('div', { class: 'label-line' }, h('label', { for: id }, field.label, requiredMark(field, configured)), tags);
      const control = field.kind === 'password'
        ? h('div', { class: 'with-button' }, input, h('button', {
          type: 'button',
          class: 'small secondary',
          'aria-pressed': 'false',
          'aria-label': `Show ${field.label}`,
          onclick: (e) => {
            const shown = input.type === 'text';
            input.type = shown ? 'password' : 'text';
            e.currentTarget.setAttribute('aria-pressed', String(!shown));
            e.currentTarget.textContent = shown ? 'Show' : 'Hide';
          },
        }, 'Show'))
        : input;
      return h('div', { class: `field field-${field.kind}`, 'data-pointer': field.pointer }, label, control, hint, err);
    }
    case 'checkbox': {
      const input = h('input', {
        type: 'checkbox', id, checked: (get() ?? field.default) === true, 'aria-describedby': describedBy,
        onchange: (e) => set(e.target.checked),
      });
      return h('div', { class: 'field field-checkbox', 'data-pointer': field.pointer }, h('div', { class: 'check' }, input, h('label', { for: id }, field.label)), hint, err);
    }
    case 'select': {
      const select = h('select', {
        id, 'aria-describedby': describedBy, 'aria-required': field.required ? 'true' : null,
        onchange: (e) => set(e.target.value),
      },
      h('option', { value: '' }, field.required ? '\u2014 choose \u2014' : '\u2014 none \u2014'),
      field.options.map((o, i) => h('option', { value: String(i), title: o.description ?? null }, o.label)));
      select.value = get() ?? '';
      return h('div', { class: 'field field-select', 'data-pointer': field.pointer }, h('label', { for: id }, field.label, requiredMark(field)), select, hint, err);
    }
    case 'checklist': {
      const chosen = new Set(get() ?? []);
      const boxes = field.options.map((o, i) => {
        const boxId = `${id}-${i}`;
        return h('div', { class: 'check' },
          h('input', {
            type: 'checkbox', id: boxId, checked: chosen.has(i),
            onchange: (e) => {
              if (e.target.checked) chosen.add(i);
              else chosen.delete(i);
              set([...chosen].sort((a, b) => a - b));
            },
          }),
          h('label', { for: boxId, title: o.description ?? null }, o.label));
      });
      return h('fieldset', { class: 'field field-checklist', 'data-pointer': field.pointer, 'aria-describedby': describedBy },
        h('legend', {}, field.label, requiredMark(field)), hint, h('div', { class: 'checks' }, boxes), err);
    }
    case 'object': {
      const draft = get() ?? {};
      set(draft);
      const children = field.fields.map((child) =>
        renderField(child, draft, child.key, () => `${ptr()}/${escapeSegment(child.key)}`, opts));
      return h('fieldset', { class: 'field field-object', 'data-pointer': field.pointer, 'aria-describedby': describedBy },
        h('legend', {}, field.label, requiredMark(field, configured)), configuredNote(configured), hint, err, children);
    }
    case 'list':
    case 'map': {
      const rows = h('div', { class: 'rows' });
      const fieldset = h('fieldset', { class: `field field-${field.kind}`, 'data-pointer': field.pointer, 'aria-describedby': describedBy },
        h('legend', {}, field.label, requiredMark(field, configured)), configuredNote(configured), hint, err, rows);
      const items = get() ?? [];
      set(items);
      const draw = () => {
        clear(rows);
        items.forEach((item, i) => rows.append(renderRow(field, items, i, ptr, opts, draw)));
        if (items.length === 0) rows.append(h('p', { class: 'muted' }, field.kind === 'map' ? 'No entries.' : 'None.'));
      };
      draw();
      fieldset.append(h('button', {
        type: 'button',
        class: 'small secondary',
        onclick: () => {
          items.push(field.kind === 'map' ? ['', draftOf(field.item, undefined)] : draftOf(field.item, undefined));
          draw();
          const inputs = rows.lastElementChild?.querySelectorAll('input, select, textarea');
          inputs?.[0]?.focus();
        },
      }, field.kind === 'map' ? `Add entry to ${field.label}` : `Add ${field.item.label.toLowerCase()}`));
      return fieldset;
    }
    default: {
      const area = h('textarea', {
        id, rows: 5, class: 'mono', spellcheck: 'false', 'aria-describedby': describedBy,
        placeholder: configured ? 'configured \u2014 leave empty to keep' : 'JSON',
        oninput: (e) => set(e.target.value),
      });
      area.value = get() ?? '';
      return h('div', { class: 'field field-json', 'data-pointer': field.pointer },
        h('div', { class: 'label-line' }, h('label', { for: id }, field.label, requiredMark(field, configured)),
          h('span', { class: 'tag' }, 'JSON'), configured ? h('span', { class: 'tag tag-ok' }, 'configured') : null),
        area, hint, err);
    }
  }
}

function renderRow(field, items, i, ptr, opts, redraw) {
  const remove = h('button', {
    type: 'button',
    class: 'small danger',
    onclick: () => {
      items.splice(i, 1);
      redraw();
    },
  }, 'Remove');
  if (field.kind === 'list') {
    const rowPtr = () => `${ptr()}/${i}`;
    const item = { ...field.item, label: `${field.item.label} ${i + 1}`, description: '' };
    remove.setAttribute('aria-label', `Remove ${item.label}`);
    return h('div', { class: 'row' }, renderField(item, items, i, rowPtr, opts), remove);
  }
  const pair = items[i];
  const keyId = uid('key');
  const rowPtr = () => `${ptr()}/${escapeSegment(pair[0])}`;
  const keyInput = h('input', {
    id: keyId, type: 'text', value: pair[0], autocomplete: 'off', spellcheck: 'false',
    oninput: (e) => {
      pair[0] = e.target.value;
    },
  });
  const item = { ...field.item, label: `Value ${i + 1}`, description: '' };
  remove.setAttribute('aria-label', `Remove entry ${i + 1}`);
  return h('div', { class: 'row row-map' },
    h('div', { class: 'field' }, h('label', { for: keyId }, `Key ${i + 1}`), keyInput),
    renderField(item, pair, 1, rowPtr, opts), remove);
}

/** Hides every error shown in `root`. */
export function clearErrors(root) {
  for (const slot of root.querySelectorAll('[data-error-slot]')) {
    clear(slot).hidden = true;
  }
  for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const summary = root.querySelector('[data-error-summary]');
  if (summary) clear(summary).hidden = true;
}

function controlsOf(slot) {
  const box = slot.closest('.field, fieldset, [data-error-scope]');
  return box ? [...box.querySelectorAll('input, select, textarea')] : [];
}

/**
 * Shows `errors` (`{ pointer, detail }`, pointers into the request body): each next to the
 * deepest slot whose pointer contains it, the rest in the summary (`[data-error-summary]`).
 * Focuses the first control with an error (or the summary). Returns how many were placed.
 */
export function showErrors(root, errors, { detail } = {}) {
  clearErrors(root);
  const slots = [...root.querySelectorAll('[data-error-slot]')];
  const known = slots.map((s) => s.pointerOf?.() ?? '');
  const summary = root.querySelector('[data-error-summary]');
  const loose = [];
  let first = null;
  for (const error of errors) {
    const pointer = error.pointer ?? '';
    const target = errorTarget(known.filter((k) => k !== ''), pointer);
    const slot = target ? slots[known.indexOf(target)] : null;
    if (!slot) {
      loose.push(error);
      continue;
    }
    const below = pointer.length > target.length && pointerWithin(pointer, target) ? pointer.slice(target.length + 1) : '';
    slot.append(h('p', {}, below ? h('code', {}, below) : null, below ? ': ' : '', error.detail ?? 'invalid'));
    slot.hidden = false;
    for (const control of controlsOf(slot)) control.setAttribute('aria-invalid', 'true');
    first ??= controlsOf(slot)[0] ?? null;
  }
  if (summary && (loose.length || detail)) {
    summary.append(h('p', {}, detail ?? 'The request was refused.'));
    if (loose.length) {
      summary.append(h('ul', {}, loose.map((e) => h('li', {}, e.pointer ? h('code', {}, e.pointer) : null, e.pointer ? ': ' : '', e.detail))));
    }
    summary.hidden = false;
  }
  if (first) first.focus();
  else if (summary && !summary.hidden) summary.focus();
  return errors.length - loose.length;
}

/**
 * A small form of text inputs (create a workspace, add an environment...). `inputs`:
 * `[{ name, label, hint?, pointer?, type?, required?, value? }]`. `submit(values)` may throw an
 * ApiError: its field errors appear next to the inputs, the rest above the button.
 */
export function quickForm({ inputs, submitLabel, submit, title, className = 'card' }) {
  const values = {};
  const rows = inputs.map((spec) => {
    const id = uid(`q-${spec.name}`);
    const err = errorSlot(spec.pointer ?? `/${spec.name}`, `${id}-err`);
    const hint = spec.hint ? h('p', { class: 'hint', id: `${id}-hint` }, richText(spec.hint)) : null;
    const input = h(spec.type === 'textarea' ? 'textarea' : 'input', {
      id,
      name: spec.name,
      type: spec.type === 'textarea' ? null : spec.type ?? 'text',
      value: spec.value ?? '',
      autocomplete: spec.type === 'password' ? 'new-password' : 'off',
      spellcheck: 'false',
      'aria-required': spec.required ? 'true' : null,
      'aria-describedby': [hint ? hint.id : null, err.id].filter(Boolean).join(' '),
      placeholder: spec.placeholder ?? null,
    });
    values[spec.name] = () => input.value;
    return h('div', { class: 'field' }, h('label', { for: id }, spec.label, spec.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), input, hint, err);
  });
  const summary = h('div', { class: 'error-box', role: 'alert', tabindex: '-1', hidden: true, 'data-error-summary': '' });
  const button = h('button', { type: 'submit' }, submitLabel);
  const form = h('form', {
    class: `quick-form ${className}`,
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form);
      const got = Object.fromEntries(Object.entries(values).map(([k, read]) => [k, read()]));
      button.disabled = true;
      try {
        await submit(got, form);
      } catch (err) {
        const errors = err.errors ?? [];
        showErrors(form, errors, { detail: errors.length ? null : err.detail ?? String(err) });
      } finally {
        button.disabled = false;
      }
    },
  }, title ? h('h2', {}, title) : null, h('div', { class: 'quick-fields' }, rows), summary, h('div', { class: 'actions' }, button));
  return form;
}
