// The console's form model, rendered for every integration type the real `keywire` binary
// registers (GET /api/v1/integration-types on a freshly started server), plus schema shapes no
// registered type uses yet. A new integration crate whose schema the console cannot turn into
// a working form fails here.
//
//   node --test console-tests/form-model.test.mjs      (KEYWIRE_BIN picks the binary)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  KINDS, buildFields, checkScope, controls, draftFromMetadata, errorTarget, eventSource,
  groupEvents, humanize, mergePatch, metadataFromDraft, scopeModel, typeModel,
} from '../crates/keywire-server/console/form-model.mjs';
import { call, startServer } from './server.mjs';

/** Removes the values at `pointers` (top-level or nested) from a copy of `value`. */
function without(value, pointers) {
  const copy = structuredClone(value);
  for (const pointer of pointers) {
    const segments = pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let node = copy;
    for (const s of segments.slice(0, -1)) node = node?.[s];
    if (node && typeof node === 'object') delete node[segments.at(-1)];
  }
  return copy;
}

function allFields(fields) {
  return fields.flatMap((f) => [f, ...(f.kind === 'object' ? allFields(f.fields) : []), ...(f.item ? allFields([f.item]) : [])]);
}

/** The checks every type's form must pass. */
function checkType(type) {
  const model = typeModel(type);
  const schema = type.metadataSchema;
  const fields = allFields(model.fields);

  // Every control is drawable and labelled; pointers of fields are unique.
  const rendered = controls(model);
  for (const c of rendered) {
    assert.ok(KINDS.includes(c.kind), `${type.type}: ${c.pointer} has unknown kind ${c.kind}`);
    assert.ok(typeof c.label === 'string' && c.label.trim(), `${type.type}: ${c.pointer} has no label`);
  }
  const pointers = fields.map((f) => f.pointer);
  assert.equal(new Set(pointers).size, pointers.length, `${type.type}: duplicate field pointers ${pointers}`);

  // Every top-level property has a field, with the schema's `required`.
  const props = Object.keys(schema.properties ?? {});
  assert.deepEqual(model.fields.map((f) => f.key).sort(), props.slice().sort(), `${type.type}: fields vs properties`);
  for (const f of model.fields) {
    assert.equal(f.required, (schema.required ?? []).includes(f.key), `${type.type}: ${f.pointer} required`);
  }

  // Credentials are password inputs (or JSON areas for non-strings), never plain text.
  for (const pointer of type.secretFields ?? []) {
    const field = fields.find((f) => f.pointer === pointer);
    assert.ok(field, `${type.type}: no field for credential ${pointer}`);
    assert.ok(field.secret, `${type.type}: ${pointer} is not marked secret`);
    assert.ok(['password', 'json', 'object', 'map', 'list'].includes(field.kind), `${type.type}: credential ${pointer} drawn as ${field.kind}`);
  }
  for (const f of fields.filter((x) => x.kind === 'text')) {
    assert.ok(!f.secret, `${type.type}: ${f.pointer} is secret but drawn as text`);
  }

  // Create: the example metadata goes into the form and comes back out unchanged.
  const example = type.exampleMetadata;
  const draft = draftFromMetadata(model.fields, example);
  const created = metadataFromDraft(model.fields, draft);
  assert.deepEqual(created.errors, [], `${type.type}: example metadata gave errors`);
  assert.deepEqual(created.metadata, example, `${type.type}: example metadata did not round-trip`);

  // Edit: the stored view has no credentials; they show as configured and, left empty, are not
  // sent (the server keeps them), so an untouched form patches nothing.
  const secretPointers = type.secretFields ?? [];
  const stored = without(example, secretPointers);
  const edited = metadataFromDraft(model.fields, draftFromMetadata(model.fields, stored));
  assert.deepEqual(edited.errors, [], `${type.type}: untouched edit gave errors`);
  assert.deepEqual(edited.metadata, stored, `${type.type}: untouched edit changed metadata`);
  assert.deepEqual(mergePatch(stored, edited.metadata), {}, `${type.type}: untouched edit patches something`);

  // An empty form sends nothing it was not given (the server names what is missing, by pointer)
  // and reports no local problem.
  const empty = metadataFromDraft(model.fields, draftFromMetadata(model.fields, {}));
  assert.deepEqual(empty.errors, [], `${type.type}: an empty form gave local errors`);
  for (const f of model.fields) {
    if (f.default === undefined && !(f.required && ['checkbox', 'object', 'list', 'map', 'checklist'].includes(f.kind))) {
      assert.ok(!(f.key in empty.metadata), `${type.type}: an empty form sent ${f.pointer}`);
    }
  }

  // Server errors land on the field they name.
  const slots = ['/name', '/notifyOn', '/actions', '/projectSlug', '/environmentSlugs', '/metadata',
    ...fields.filter((f) => !f.pointer.includes('*')).map((f) => `/metadata${f.pointer}`)];
  for (const f of model.fields) {
    assert.equal(errorTarget(slots, `/metadata${f.pointer}`), `/metadata${f.pointer}`);
  }
  assert.equal(errorTarget(slots, '/notifyOn/3'), '/notifyOn');

  // Events: every permitted event appears once, in a named group.
  const grouped = model.eventGroups.flatMap((g) => g.events.map((e) => e.name));
  assert.deepEqual(grouped.slice().sort(), (type.permittedEvents ?? []).slice().sort(), `${type.type}: events`);
  assert.ok(model.eventGroups.every((g) => g.label && g.events.length));
  assert.deepEqual(model.actions.map((a) => a.name), type.permittedActions ?? []);
  assert.ok(['single', 'multi'].includes(model.scope.environmentPicker));
  return { model, rendered };
}

describe('every registered integration type', () => {
  let server;
  let types = [];
  before(async () => {
    server = await startServer();
    const answer = await call(server, 'GET', '/api/v1/integration-types');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    types = answer.body.items;
  });
  after(async () => {
    await server?.stop();
  });

  test('the registry is not empty and includes the webhook type the browser test uses', () => {
    assert.ok(types.length >= 2, `only ${types.length} types`);
    assert.ok(types.some((t) => t.type === 'webhook'));
  });

  test('each type renders a working form model', (t) => {
    for (const type of types) {
      const { rendered, model } = checkType(type);
      const fallbacks = allFields(model.fields).filter((f) => f.kind === 'json').map((f) => f.pointer);
      t.diagnostic(`${type.type}: ${rendered.length} controls${fallbacks.length ? `; JSON text areas for ${fallbacks.join(', ')}` : ''}`);
    }
  });

  test('event groups use the sources the server records', async () => {
    // The server's own events carry their source: the console groups by the same names.
    await call(server, 'POST', '/api/v1/workspaces', { name: 'Sources' });
    await call(server, 'POST', '/api/v1/workspaces/sources/projects', { name: 'P', environments: [{ name: 'dev' }] });
    await call(server, 'PUT', '/api/v1/projects/p/secrets/K', { values: { dev: 'v' } });
    await call(server, 'PUT', '/api/v1/projects/p/variables/V', { values: { dev: 'v' } });
    const events = await call(server, 'GET', '/api/v1/workspaces/sources/events?limit=50');
    assert.equal(events.status, 200);
    assert.ok(events.body.items.length >= 5);
    for (const e of events.body.items) assert.equal(eventSource(e.type), e.source, e.type);
  });
});

describe('schema shapes', () => {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    additionalProperties: false,
    required: ['region', 'token', 'targets', 'port'],
    properties: {
      region: { description: 'Where.', $ref: '#/$defs/Region' },
      token: { type: 'string', writeOnly: true, minLength: 1 },
      port: { type: 'integer', format: 'uint16', minimum: 1, maximum: 65535 },
      ratio: { type: ['number', 'null'] },
      verbose: { type: 'boolean', default: false },
      mode: { oneOf: [{ type: 'string', const: 'fast', description: 'Fast.' }, { type: 'string', const: 'safe', description: 'Safe.' }] },
      targets: { type: 'array', items: { type: 'string', enum: ['production', 'preview', 'development'] }, uniqueItems: true },
      names: { type: 'array', items: { type: 'string' } },
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      auth: { anyOf: [{ $ref: '#/$defs/Auth' }, { type: 'null' }] },
      matrix: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }] },
      shape: { oneOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { type: 'object', properties: { b: { type: 'integer' } } }] },
    },
    $defs: {
      Region: { type: 'string', enum: ['eu-west-1', 'us-east-1'] },
      Auth: {
        type: 'object',
        additionalProperties: false,
        required: ['user'],
        properties: { user: { type: 'string' }, password: { type: 'string', writeOnly: true } },
      },
    },
  };
  const type = {
    type: 'shapes',
    name: 'Shapes',
    category: 'infrastructure',
    permittedEvents: ['SECRET_UPDATED', 'WORKSPACE_ROLE_CREATED', 'INVITED_TO_WORKSPACE', 'WORKSPACE_MEMBERSHIP_UPDATED'],
    permittedActions: ['upsert', 'delete', 'cleanup_on_remove', 'redeploy'],
    scope: { projectRequired: true, environments: 'exactly-one' },
    metadataSchema: schema,
    exampleMetadata: {
      region: 'eu-west-1',
      token: 'tok_123',
      port: 8443,
      ratio: 0.5,
      verbose: true,
      mode: 'safe',
      targets: ['production', 'preview'],
      names: ['a', 'b'],
      headers: { 'X-One': '1', 'a/b': '2' },
      auth: { user: 'u', password: 'p' },
      matrix: ['x', 1],
      shape: { b: 2 },
    },
    secretFields: ['/token', '/auth/password'],
  };

  test('each construct becomes the control it should', () => {
    const fields = buildFields(schema, type.secretFields);
    const kind = Object.fromEntries(fields.map((f) => [f.key, f.kind]));
    assert.deepEqual(kind, {
      region: 'select', token: 'password', port: 'integer', ratio: 'number', verbose: 'checkbox', mode: 'select',
      targets: 'checklist', names: 'list', headers: 'map', auth: 'object', matrix: 'json', shape: 'json',
    });
    const byKey = Object.fromEntries(fields.map((f) => [f.key, f]));
    assert.equal(byKey.region.description, 'Where.');
    assert.deepEqual(byKey.mode.options.map((o) => o.value), ['fast', 'safe']);
    assert.equal(byKey.mode.options[0].description, 'Fast.');
    assert.equal(byKey.port.min, 1);
    assert.equal(byKey.port.max, 65535);
    assert.ok(byKey.ratio.nullable && byKey.auth.nullable);
    assert.equal(byKey.auth.fields.find((f) => f.key === 'password').kind, 'password');
    assert.equal(byKey.headers.item.kind, 'text');
    assert.equal(byKey.names.item.kind, 'text');
  });

  test('the whole form passes the checks every registered type must pass', () => {
    checkType(type);
  });

  test('local problems are reported by pointer', () => {
    const model = typeModel(type);
    const draft = draftFromMetadata(model.fields, type.exampleMetadata);
    draft.port = 'eighty';
    draft.ratio = '1e999';
    draft.headers.push(['X-One', '3'], ['', 'x']);
    draft.shape = '{not json';
    draft.auth.user = '';
    const { errors, metadata } = metadataFromDraft(model.fields, draft);
    assert.equal(errors.length, 5, JSON.stringify(errors));
    assert.deepEqual(metadata.auth, { password: 'p' }, 'an emptied field is left out');
    const at = Object.fromEntries(errors.map((e) => [e.pointer, e.detail]));
    assert.equal(at['/metadata/port'], 'must be a whole number');
    assert.equal(at['/metadata/ratio'], 'must be a number');
    assert.match(at['/metadata/headers/X-One'], /twice/);
    assert.match(at['/metadata/headers/'], /needs a key/);
    assert.equal(at['/metadata/shape'], 'must be valid JSON');
  });

  test('a checkbox left alone keeps the stored state; a click sets it', () => {
    const [flag] = buildFields({ type: 'object', properties: { flag: { type: 'boolean', default: true } } });
    assert.equal(draftFromMetadata([flag], {}).flag, undefined);
    assert.deepEqual(metadataFromDraft([flag], { flag: undefined }).metadata, {});
    assert.deepEqual(metadataFromDraft([flag], { flag: false }).metadata, { flag: false });
    assert.deepEqual(metadataFromDraft([flag], draftFromMetadata([flag], { flag: false })).metadata, { flag: false });
  });

  test('merge patches carry only changes, and null for removals', () => {
    assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: 5 }, { a: 1, b: { c: 2 }, f: 6 }), { b: { d: null }, e: null, f: 6 });
    assert.deepEqual(mergePatch({ url: 'x' }, { url: 'x', token: 'new' }), { token: 'new' });
  });

  test('scope rules drive the pickers', () => {
    assert.deepEqual(
      [scopeModel({ projectRequired: false, environments: 'any' }).environmentPicker, scopeModel({ environments: 'exactly-one' }).environmentPicker],
      ['multi', 'single'],
    );
    const one = scopeModel({ projectRequired: true, environments: 'exactly-one' });
    assert.equal(checkScope(one, '', []).pointer, '/projectSlug');
    assert.equal(checkScope(one, 'p', []).pointer, '/environmentSlugs');
    assert.equal(checkScope(one, 'p', ['a', 'b']).pointer, '/environmentSlugs');
    assert.equal(checkScope(one, 'p', ['a']), null);
    const any = scopeModel({ projectRequired: false, environments: 'any' });
    assert.equal(checkScope(any, '', []), null);
    assert.equal(checkScope(any, '', ['a']).pointer, '/environmentSlugs');
    assert.equal(checkScope(scopeModel({ environments: 'at-least-one' }), 'p', []).pointer, '/environmentSlugs');
  });

  test('events are grouped by the source the server assigns', () => {
    const groups = groupEvents(['SECRET_UPDATED', 'WORKSPACE_ROLE_CREATED', 'INVITED_TO_WORKSPACE', 'WORKSPACE_MEMBERSHIP_UPDATED', 'WORKSPACE_CREATED', 'LEFT_WORKSPACE']);
    assert.deepEqual(groups.map((g) => [g.source, g.events.map((e) => e.name)]), [
      ['WORKSPACE', ['WORKSPACE_CREATED']],
      ['WORKSPACE_MEMBERSHIP', ['INVITED_TO_WORKSPACE', 'WORKSPACE_MEMBERSHIP_UPDATED', 'LEFT_WORKSPACE']],
      ['WORKSPACE_ROLE', ['WORKSPACE_ROLE_CREATED']],
      ['SECRET', ['SECRET_UPDATED']],
    ]);
  });

  test('labels read as words', () => {
    assert.equal(humanize('webhookUrl'), 'Webhook URL');
    assert.equal(humanize('signingSecret'), 'Signing secret');
    assert.equal(humanize('SECRET_ADDED'), 'Secret added');
    assert.equal(humanize('apiBaseURL'), 'API base URL');
    assert.equal(humanize('cleanup_on_remove'), 'Cleanup on remove');
  });

  test('odd schemas degrade to a JSON text area instead of throwing', () => {
    for (const odd of [undefined, null, true, false, {}, { type: 'string' }, { $ref: '#/$defs/Missing' }, { type: 'object', properties: { a: { $ref: '#' } } }, { type: ['string', 'integer'] }]) {
      const fields = buildFields(odd, []);
      assert.ok(fields.length >= 1);
      for (const f of allFields(fields)) assert.ok(KINDS.includes(f.kind));
    }
    assert.deepEqual(buildFields({ type: 'object', properties: {}, additionalProperties: false }), []);
    // A self-referencing schema stops at the depth limit.
    const deep = buildFields({ type: 'object', properties: { next: { $ref: '#' } } });
    assert.ok(allFields(deep).some((f) => f.kind === 'json'));
    const { metadata, errors } = metadataFromDraft(buildFields({ type: 'string' }), { '': '"x"' });
    assert.deepEqual([metadata, errors], ['x', []]);
  });
});
