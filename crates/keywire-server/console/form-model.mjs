// The form model: an integration type's descriptor (GET /api/v1/integration-types) turned into
// what the integration form shows, and the form's values turned back into the API's JSON.
//
// Pure: no DOM, no fetch. The browser renders this model (form-view.mjs); `node --test` renders
// it for every registered type (console-tests/form-model.test.mjs), so a new integration crate
// whose schema this module cannot handle fails CI instead of the console.
//
// Anything the model does not understand becomes a `json` field (a JSON text area): a schema is
// never a reason to throw.

/** Every kind of control the view knows how to draw. */
export const KINDS = Object.freeze([
  'text', 'password', 'integer', 'number', 'checkbox', 'select',
  'object', 'map', 'list', 'checklist', 'json',
]);

const MAX_DEPTH = 8;

// ---------------------------------------------------------------------------------------------
// Labels

const WORDS = new Map([
  ['url', 'URL'], ['urls', 'URLs'], ['id', 'ID'], ['ids', 'IDs'], ['api', 'API'], ['aws', 'AWS'],
  ['arn', 'ARN'], ['http', 'HTTP'], ['https', 'HTTPS'], ['smtp', 'SMTP'], ['tls', 'TLS'],
  ['ssl', 'SSL'], ['uri', 'URI'], ['ttl', 'TTL'], ['json', 'JSON'], ['sql', 'SQL'],
  ['dns', 'DNS'], ['ip', 'IP'], ['oauth', 'OAuth'], ['ci', 'CI'], ['github', 'GitHub'],
  ['gitlab', 'GitLab'],
]);

/** `webhookUrl`, `signing_secret`, `SECRET_ADDED` → `Webhook URL`, `Signing secret`, `Secret added`. */
export function humanize(name) {
  const words = String(name)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[\s_\-.]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
  if (words.length === 0) return String(name);
  return words
    .map((w, i) => WORDS.get(w) ?? (i === 0 ? w[0].toUpperCase() + w.slice(1) : w))
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// JSON pointers (RFC 6901)

/** One pointer segment, escaped. */
export function escapeSegment(segment) {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The segments of a pointer, unescaped (`''` → `[]`). */
export function pointerSegments(pointer) {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Whether `prefix` is `pointer` or one of its ancestors (segment-wise, not by characters). */
export function pointerWithin(pointer, prefix) {
  return prefix === '' || pointer === prefix || pointer.startsWith(prefix + '/');
}

/**
 * Where an error at `pointer` is shown: the longest of `known` (the pointers that have an error
 * slot) that is the pointer or one of its ancestors; `''` (the form as a whole) if none is.
 */
export function errorTarget(known, pointer) {
  let best = '';
  for (const candidate of known) {
    if (pointerWithin(pointer ?? '', candidate) && candidate.length > best.length) best = candidate;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Schema → fields

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isNullSchema(s) {
  return isObject(s) && (s.type === 'null' || (Array.isArray(s.enum) && s.enum.length === 1 && s.enum[0] === null) || s.const === null);
}

/** Resolves `$ref`, single-entry `allOf`, `T | null` and `[T, "null"]`; sibling keywords win. */
function resolve(schema, root, depth = 0) {
  let nullable = false;
  let s = isObject(schema) ? schema : schema === false ? { not: {} } : {};
  for (let guard = 0; guard < 16; guard++) {
    if (typeof s.$ref === 'string') {
      const target = lookupRef(root, s.$ref);
      const { $ref, ...rest } = s;
      if (!target || depth > MAX_DEPTH) return { schema: { ...rest, unresolved: $ref }, nullable };
      s = { ...target, ...rest };
      continue;
    }
    if (Array.isArray(s.allOf) && s.allOf.length === 1 && isObject(s.allOf[0])) {
      const { allOf, ...rest } = s;
      s = { ...allOf[0], ...rest };
      continue;
    }
    const key = ['anyOf', 'oneOf'].find((k) => Array.isArray(s[k]) && s[k].length === 2
      && s[k].some(isNullSchema) && !s[k].every(isNullSchema));
    if (key) {
      const other = s[key].find((a) => !isNullSchema(a));
      const { [key]: _, ...rest } = s;
      s = { ...other, ...rest };
      nullable = true;
      continue;
    }
    if (Array.isArray(s.type)) {
      const types = s.type.filter((t) => t !== 'null');
      if (types.length < s.type.length) nullable = true;
      if (types.length === 1) {
        s = { ...s, type: types[0] };
        continue;
      }
    }
    break;
  }
  if (s.nullable === true) nullable = true;
  return { schema: s, nullable };
}

function lookupRef(root, ref) {
  if (!ref.startsWith('#')) return null;
  let node = root;
  for (const segment of pointerSegments(ref.slice(1))) {
    if (!isObject(node) || !(segment in node)) return null;
    node = node[segment];
  }
  return isObject(node) ? node : null;
}

/** The choices of an enum-like schema (`enum`, or `oneOf`/`anyOf` of `const`s), or null. */
function enumOptions(s) {
  if (Array.isArray(s.enum)) {
    return s.enum.filter((v) => v !== null).map((value) => ({ value, label: String(value) }));
  }
  if (s.const !== undefined && s.const !== null) {
    return [{ value: s.const, label: String(s.const), description: s.description }];
  }
  for (const key of ['oneOf', 'anyOf']) {
    const alts = s[key];
    if (!Array.isArray(alts) || alts.length === 0) continue;
    const options = [];
    for (const alt of alts) {
      if (!isObject(alt)) return null;
      if (alt.const !== undefined) {
        if (alt.const !== null) options.push({ value: alt.const, label: alt.title ?? String(alt.const), description: alt.description });
      } else if (Array.isArray(alt.enum)) {
        for (const value of alt.enum) {
          if (value !== null) options.push({ value, label: String(value), description: alt.description });
        }
      } else if (!isNullSchema(alt)) {
        return null;
      }
    }
    return options.length ? options : null;
  }
  return null;
}

function hasNull(s) {
  if (Array.isArray(s.enum) && s.enum.includes(null)) return true;
  for (const key of ['oneOf', 'anyOf']) {
    if (Array.isArray(s[key]) && s[key].some(isNullSchema)) return true;
  }
  return false;
}

function typeOf(s) {
  if (typeof s.type === 'string') return s.type;
  if (isObject(s.properties) || isObject(s.additionalProperties)) return 'object';
  if (s.items !== undefined) return 'array';
  return undefined;
}

/**
 * One field of the form from its schema. `pointer` is relative to `metadata` (`/url`);
 * `secrets` holds the type's credential pointers (`secretFields`).
 */
function buildField(schema, ctx, pointer, key, required, depth, inherited = false) {
  const { schema: s, nullable } = resolve(schema, ctx.root, depth);
  // A credential field's parts are credentials too (a write-only list of objects, say).
  const direct = s.writeOnly === true || ctx.secrets.has(pointer);
  const field = {
    pointer,
    key,
    label: typeof s.title === 'string' && key !== undefined && s.title !== key && !/^[A-Z][A-Za-z0-9]+$/.test(s.title)
      ? s.title
      : humanize(key ?? 'value'),
    description: typeof s.description === 'string' ? s.description.trim() : '',
    required: Boolean(required),
    nullable: nullable || hasNull(s),
    secret: direct || inherited,
    kind: 'json',
  };
  if (s.default !== undefined) field.default = s.default;
  if (Array.isArray(s.examples) && s.examples.length) field.example = s.examples[0];
  if (s.deprecated === true) field.deprecated = true;
  if (s.readOnly === true) field.readOnly = true;
  if (depth > MAX_DEPTH || s.unresolved) return field;

  const options = enumOptions(s);
  const type = typeOf(s);
  if (options) {
    field.kind = 'select';
    field.options = options;
    return field;
  }
  switch (type) {
    case 'string':
      field.kind = field.secret ? 'password' : 'text';
      for (const k of ['minLength', 'maxLength', 'pattern', 'format']) if (s[k] !== undefined) field[k] = s[k];
      if (field.kind === 'text' && (s.format === 'textarea' || (s.maxLength ?? 0) > 500)) field.multiline = true;
      return field;
    case 'integer':
    case 'number':
      if (direct) return field;
      field.kind = type;
      for (const [k, to] of [['minimum', 'min'], ['maximum', 'max'], ['exclusiveMinimum', 'exclusiveMin'], ['exclusiveMaximum', 'exclusiveMax'], ['multipleOf', 'step']]) {
        if (typeof s[k] === 'number') field[to] = s[k];
      }
      if (typeof s.format === 'string') field.format = s.format;
      return field;
    case 'boolean':
      if (direct) return field;
      field.kind = 'checkbox';
      return field;
    case 'object': {
      const props = isObject(s.properties) ? s.properties : {};
      const extra = s.additionalProperties;
      const names = Object.keys(props);
      if (names.length > 0 && (extra === undefined || extra === false)) {
        const req = new Set(Array.isArray(s.required) ? s.required : []);
        field.kind = 'object';
        field.fields = names.map((name) =>
          buildField(props[name], ctx, `${pointer}/${escapeSegment(name)}`, name, req.has(name), depth + 1, field.secret));
        return field;
      }
      if (names.length === 0 && extra !== false && !s.patternProperties) {
        field.kind = 'map';
        field.item = buildField(isObject(extra) ? extra : {}, ctx, `${pointer}/*`, 'value', true, depth + 1, field.secret);
        field.item.label = 'Value';
        for (const k of ['minProperties', 'maxProperties']) if (s[k] !== undefined) field[k] = s[k];
        if (isObject(s.propertyNames) && typeof s.propertyNames.pattern === 'string') field.keyPattern = s.propertyNames.pattern;
        return field;
      }
      return field;
    }
    case 'array': {
      if (Array.isArray(s.prefixItems) || Array.isArray(s.items) || s.items === false) return field;
      const itemSchema = isObject(s.items) ? s.items : {};
      const item = buildField(itemSchema, ctx, `${pointer}/*`, 'item', true, depth + 1, field.secret);
      for (const k of ['minItems', 'maxItems', 'uniqueItems']) if (s[k] !== undefined) field[k] = s[k];
      if (item.kind === 'select' && !field.secret) {
        field.kind = 'checklist';
        field.options = item.options;
        return field;
      }
      field.kind = 'list';
      field.item = item;
      item.label = humanize(key ?? 'item').replace(/s$/, '') || 'Item';
      return field;
    }
    default:
      return field;
  }
}

/** The metadata fields of a type: one per property of its schema (or one `json` field). */
export function buildFields(schema, secretPointers = []) {
  const ctx = { root: isObject(schema) ? schema : {}, secrets: new Set(secretPointers) };
  const top = buildField(schema, ctx, '', undefined, true, 0);
  if (top.kind === 'object') return top.fields;
  const { schema: root } = resolve(schema, ctx.root);
  const noProperties = !isObject(root.properties) || Object.keys(root.properties).length === 0;
  if (typeOf(root) === 'object' && noProperties && root.additionalProperties === false) return [];
  // Anything else is edited as one JSON document.
  return [{ ...top, kind: 'json', label: 'Metadata', key: undefined, fields: undefined, item: undefined, options: undefined }];
}

// ---------------------------------------------------------------------------------------------
// Events, actions, scope

const SOURCES = [
  ['WORKSPACE', 'Workspace'],
  ['WORKSPACE_MEMBERSHIP', 'Workspace membership'],
  ['WORKSPACE_ROLE', 'Workspace roles'],
  ['PROJECT', 'Projects'],
  ['ENVIRONMENT', 'Environments'],
  ['SECRET', 'Secrets'],
  ['VARIABLE', 'Variables'],
  ['INTEGRATION', 'Integrations'],
  ['OTHER', 'Other'],
];

/** The source of an event type, as the server assigns it (`source_of` in routes/integrations.rs). */
export function eventSource(name) {
  if (name.startsWith('WORKSPACE_ROLE_')) return 'WORKSPACE_ROLE';
  if (name === 'WORKSPACE_MEMBERSHIP_UPDATED') return 'WORKSPACE_MEMBERSHIP';
  if (name.startsWith('WORKSPACE_')) return 'WORKSPACE';
  for (const prefix of ['PROJECT', 'ENVIRONMENT', 'SECRET', 'VARIABLE', 'INTEGRATION']) {
    if (name.startsWith(prefix + '_')) return prefix;
  }
  if (/INVITATION|_WORKSPACE$/.test(name)) return 'WORKSPACE_MEMBERSHIP';
  return 'OTHER';
}

/** Permitted events grouped by source, groups and events in a stable order. */
export function groupEvents(events = []) {
  const groups = new Map(SOURCES.map(([source, label]) => [source, { source, label, events: [] }]));
  for (const name of events) {
    const label = humanize(name);
    groups.get(eventSource(name)).events.push({ name, label });
  }
  return [...groups.values()].filter((g) => g.events.length > 0);
}

const ACTION_HINTS = {
  upsert: 'Write values that are new or changed at the target.',
  delete: 'Delete at the target what keywire wrote and no longer has.',
  cleanup_on_remove: 'Remove what it wrote when the integration is deleted.',
};

/** The actions a type permits, with labels. */
export function actionModel(actions = []) {
  return actions.map((name) => ({ name, label: humanize(name), hint: ACTION_HINTS[name] ?? '' }));
}

/** What the project and environment pickers must allow under a type's scope rule. */
export function scopeModel(scope = {}) {
  const environments = scope.environments ?? 'any';
  const projectRequired = Boolean(scope.projectRequired) || environments !== 'any';
  const single = environments === 'exactly-one';
  return {
    projectRequired,
    environments,
    environmentPicker: single ? 'single' : 'multi',
    environmentsRequired: environments !== 'any',
    hint:
      environments === 'exactly-one' ? 'Choose a project and exactly one of its environments.'
      : environments === 'at-least-one' ? 'Choose a project and at least one of its environments.'
      : projectRequired ? 'Choose a project; leave environments empty for all of them.'
      : 'Leave the project empty to hear the whole workspace; leave environments empty for all of a project\u2019s.',
  };
}

/** Whether a chosen scope satisfies the rule; the problem as a field error, or null. */
export function checkScope(model, projectSlug, environmentSlugs) {
  if (model.projectRequired && !projectSlug) return { pointer: '/projectSlug', detail: 'this type needs a project' };
  if (!projectSlug && environmentSlugs.length) return { pointer: '/environmentSlugs', detail: 'choose a project first' };
  if (model.environments === 'exactly-one' && environmentSlugs.length !== 1) return { pointer: '/environmentSlugs', detail: 'choose exactly one environment' };
  if (model.environments === 'at-least-one' && environmentSlugs.length < 1) return { pointer: '/environmentSlugs', detail: 'choose at least one environment' };
  return null;
}

/** The whole model of a type's form. */
export function typeModel(type) {
  return {
    type: type.type,
    name: type.name ?? type.type,
    description: type.description ?? '',
    category: type.category,
    infrastructure: type.category === 'infrastructure',
    fields: buildFields(type.metadataSchema, type.secretFields ?? []),
    eventGroups: groupEvents(type.permittedEvents ?? []),
    actions: actionModel(type.permittedActions ?? []),
    scope: scopeModel(type.scope ?? {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Drafts: what the controls hold. text/password/integer/number/json: a string; checkbox: a
// boolean, or undefined while untouched and unset; select: the option's index as a string ('' for
// none); checklist: selected indices; object: { key: draft }; map: [[key, draft], ...]; list:
// [draft, ...].

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The draft a field starts with: from a stored value, else its default, else empty. */
export function draftOf(field, value) {
  const v = value === undefined ? field.default : value;
  switch (field.kind) {
    case 'text':
      return v === undefined || v === null ? '' : String(v);
    case 'password':
      return typeof v === 'string' ? v : '';
    case 'integer':
    case 'number':
      return typeof v === 'number' ? String(v) : '';
    case 'checkbox':
      // Untouched and unset stays unset (the type's default applies); a click sets it.
      return typeof value === 'boolean' ? value : undefined;
    case 'select': {
      const at = field.options.findIndex((o) => sameJson(o.value, v));
      return at >= 0 ? String(at) : '';
    }
    case 'checklist':
      return Array.isArray(v)
        ? field.options.map((o, i) => (v.some((x) => sameJson(x, o.value)) ? i : -1)).filter((i) => i >= 0)
        : [];
    case 'object': {
      const out = {};
      for (const child of field.fields) out[child.key] = draftOf(child, isObject(v) ? v[child.key] : undefined);
      return out;
    }
    case 'map':
      return isObject(v) ? Object.entries(v).map(([k, x]) => [k, draftOf(field.item, x)]) : [];
    case 'list':
      return Array.isArray(v) ? v.map((x) => draftOf(field.item, x)) : [];
    default:
      return v === undefined || (v === null && !field.nullable) ? '' : JSON.stringify(v, null, 2);
  }
}

/** The drafts of all fields from stored metadata (credential fields start empty). */
export function draftFromMetadata(fields, metadata = {}) {
  const out = {};
  for (const field of fields) {
    const stored = isObject(metadata) ? metadata[field.key] : undefined;
    out[field.key ?? ''] = draftOf(field, field.kind === 'json' && field.pointer === '' ? metadata : stored);
  }
  return out;
}

/**
 * The JSON value of a draft. Returns `{ present, value }` (absent when empty) and appends local
 * problems (`{ pointer, detail }`, pointer relative to metadata) to `errors`: only what cannot be
 * sent at all (a number that is not one, JSON that does not parse, a map key given twice).
 * Required fields left empty are not refused here: the server names them by pointer, and some
 * it fills in itself (a credential keywire generates, a stored credential kept on edit).
 */
export function valueOf(field, draft, pointer, errors) {
  const absent = { present: false };
  switch (field.kind) {
    case 'text':
    case 'password': {
      const text = draft ?? '';
      if (text === '') return absent;
      return { present: true, value: text };
    }
    case 'integer':
    case 'number': {
      const text = String(draft ?? '').trim();
      if (text === '') return absent;
      const n = Number(text);
      if (!Number.isFinite(n) || (field.kind === 'integer' && !Number.isInteger(n))) {
        errors.push({ pointer, detail: field.kind === 'integer' ? 'must be a whole number' : 'must be a number' });
        return absent;
      }
      return { present: true, value: n };
    }
    case 'checkbox':
      if (typeof draft !== 'boolean') return field.required ? { present: true, value: field.default === true } : absent;
      return { present: true, value: draft };
    case 'select': {
      if (draft === '' || draft === undefined) return absent;
      const option = field.options[Number(draft)];
      if (!option) {
        errors.push({ pointer, detail: 'choose one of the options' });
        return absent;
      }
      return { present: true, value: option.value };
    }
    case 'checklist': {
      const chosen = (draft ?? []).map((i) => field.options[i]).filter(Boolean).map((o) => o.value);
      if (chosen.length === 0 && !field.required) return absent;
      return { present: true, value: chosen };
    }
    case 'object': {
      const out = {};
      for (const child of field.fields) {
        const got = valueOf(child, (draft ?? {})[child.key], `${pointer}/${escapeSegment(child.key)}`, errors);
        if (got.present) out[child.key] = got.value;
      }
      if (Object.keys(out).length === 0 && !field.required) return absent;
      return { present: true, value: out };
    }
    case 'map': {
      const out = {};
      for (const [i, [key, item]] of (draft ?? []).entries()) {
        const rowPointer = `${pointer}/${escapeSegment(key)}`;
        if (key === '') {
          errors.push({ pointer: rowPointer, detail: `entry ${i + 1} needs a key` });
          continue;
        }
        if (Object.hasOwn(out, key)) {
          errors.push({ pointer: rowPointer, detail: `the key \u201c${key}\u201d appears twice` });
          continue;
        }
        const got = valueOf(field.item, item, rowPointer, errors);
        if (got.present) out[key] = got.value;
      }
      if (Object.keys(out).length === 0 && !field.required) return absent;
      return { present: true, value: out };
    }
    case 'list': {
      const out = [];
      for (const [i, item] of (draft ?? []).entries()) {
        const got = valueOf(field.item, item, `${pointer}/${i}`, errors);
        if (got.present) out.push(got.value);
      }
      if (out.length === 0 && !field.required) return absent;
      return { present: true, value: out };
    }
    default: {
      const text = String(draft ?? '').trim();
      if (text === '') return absent;
      try {
        return { present: true, value: JSON.parse(text) };
      } catch {
        errors.push({ pointer, detail: 'must be valid JSON' });
        return absent;
      }
    }
  }
}

/** Metadata from the drafts of all fields: `{ metadata, errors }` (errors' pointers under `/metadata`). */
export function metadataFromDraft(fields, draft) {
  const errors = [];
  if (fields.length === 1 && fields[0].pointer === '') {
    const got = valueOf(fields[0], draft[''], '', errors);
    return { metadata: got.present ? got.value : {}, errors: errors.map(under('/metadata')) };
  }
  const metadata = {};
  for (const field of fields) {
    const got = valueOf(field, draft[field.key], field.pointer, errors);
    if (got.present) metadata[field.key] = got.value;
  }
  return { metadata, errors: errors.map(under('/metadata')) };
}

function under(prefix) {
  return (e) => ({ ...e, pointer: prefix + e.pointer });
}

/**
 * An RFC 7396 merge patch that turns `from` into `to` (for PATCH of metadata). Keys only in
 * `from` become `null`; credential fields, absent from stored views, are only sent when typed.
 */
export function mergePatch(from, to) {
  if (!isObject(from) || !isObject(to)) return to;
  const patch = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    if (!Object.hasOwn(from, key)) patch[key] = value;
    else if (isObject(from[key]) && isObject(value)) {
      const inner = mergePatch(from[key], value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (!sameJson(from[key], value)) patch[key] = value;
  }
  return patch;
}

// ---------------------------------------------------------------------------------------------
// The rendered model, flat: what a person sees, in order. Used by the tests (and handy to read).

/** Every control of a type's form, in document order, with the pointer its errors land on. */
export function controls(model) {
  const out = [
    { pointer: '/name', kind: 'text', label: 'Name', required: true },
    { pointer: '/enabled', kind: 'checkbox', label: 'Enabled', required: false },
    { pointer: '/projectSlug', kind: 'select', label: 'Project', required: model.scope.projectRequired },
    { pointer: '/environmentSlugs', kind: model.scope.environmentPicker === 'single' ? 'select' : 'checklist', label: 'Environments', required: model.scope.environmentsRequired },
    ...model.eventGroups.flatMap((g) => g.events.map((e) => ({ pointer: '/notifyOn', kind: 'checkbox', label: e.label, group: g.label, value: e.name, required: false }))),
    ...model.actions.map((a) => ({ pointer: '/actions', kind: 'checkbox', label: a.label, value: a.name, required: false })),
  ];
  const walk = (field) => {
    out.push({
      pointer: '/metadata' + field.pointer,
      kind: field.kind,
      label: field.label,
      required: field.required,
      secret: field.secret,
      ...(field.options ? { options: field.options.map((o) => o.label) } : {}),
    });
    if (field.kind === 'object') for (const child of field.fields) walk(child);
    if (field.kind === 'map' || field.kind === 'list') walk(field.item);
  };
  for (const field of model.fields) walk(field);
  return out;
}
