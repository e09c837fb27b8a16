// The web console in a real browser: Debian's Chromium driven by playwright-core against the real
// `keywire` binary (fresh SQLite data directory, free port) and a local webhook sink that checks
// Standard Webhooks signatures. Screenshots go to target/console-screenshots/.
//
//   node --test console-tests/console.test.mjs     (KEYWIRE_BIN, CHROMIUM pick the binaries)

import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { ROOT, startServer } from './server.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'target', 'console-screenshots');
const SIGNING_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const SECRET_VALUE_1 = `postgres://shop:${randomBytes(9).toString('hex')}@db/shop`;
const SECRET_VALUE_2 = `postgres://shop:${randomBytes(9).toString('hex')}@db2/shop`;

/** A webhook receiver on 127.0.0.1 that verifies each delivery's signature (Standard Webhooks). */
function startSink() {
  const received = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      const timestamp = req.headers['webhook-timestamp'];
      const key = Buffer.from(SIGNING_SECRET.slice('whsec_'.length), 'base64');
      const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
      const signatures = String(req.headers['webhook-signature'] ?? '').split(' ')
        .filter((s) => s.startsWith('v1,')).map((s) => Buffer.from(s.slice(3), 'base64'));
      const valid = signatures.some((s) => s.length === expected.length && timingSafeEqual(s, expected));
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        // recorded as not JSON
      }
      received.push({ method: req.method, path: req.url, contentType: req.headers['content-type'], id, valid, body, json });
      if (req.url.startsWith('/gh/')) {
        // A GitHub API in an outage, for the infrastructure integration.
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"fake outage"}');
        return;
      }
      res.writeHead(valid ? 204 : 401).end();
    });
  });
  return new Promise((ready) => server.listen(0, '127.0.0.1', () => ready({
    url: `http://127.0.0.1:${server.address().port}/hooks/keywire`,
    github: `http://127.0.0.1:${server.address().port}/gh/api/v3`,
    received,
    close: () => new Promise((done) => server.close(done)),
  })));
}

let keywire;
let sink;
let browser;
let page;
const problems = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  sink = await startSink();
  keywire = await startServer({ KEYWIRE_RETRY_SCHEDULE: '0s,1s,2s' });
  browser = await chromium.launch({ executablePath: CHROMIUM });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Chromium logs every 4xx/5xx answer as "Failed to load resource"; the test provokes some on
  // purpose. Anything else logged as an error (a CSP violation, an exception) fails the test.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of \d{3}/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  await sink?.close();
  await keywire?.stop();
});

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function heading(text) {
  await page.getByRole('heading', { level: 1, name: text, exact: true }).waitFor();
}

test('the console is served with a strict CSP and small assets', async () => {
  const response = await fetch(`${keywire.url}/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^text\/html/);
  const csp = response.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await response.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style');
});

test('sign in with an API token (keyboard only)', async () => {
  await page.goto(`${keywire.url}/`);
  await heading('Sign in to keywire');
  await shot('01-sign-in');
  const token = page.getByLabel('API token');
  await token.waitFor();
  await token.fill('kw_not_a_real_token_000000000000');
  await page.keyboard.press('Enter');
  await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
  await token.fill(keywire.token);
  await page.keyboard.press('Enter');
  await heading('Workspaces');
  assert.equal(await page.evaluate(() => document.cookie), '', 'no cookies');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('keywire.token')), keywire.token);
});

test('create a workspace, a project and its environments', async () => {
  const wsForm = page.locator('form', { has: page.getByRole('heading', { name: 'New workspace' }) });
  await wsForm.getByLabel('Name').fill('Acme Corp');
  await wsForm.getByRole('button', { name: 'Create workspace' }).click();
  await heading('Acme Corp');

  const projectForm = page.locator('form', { has: page.getByRole('heading', { name: 'New project' }) });
  await projectForm.getByLabel('Name').fill('Web Shop');
  await projectForm.getByLabel('Description').fill('The storefront');
  await projectForm.getByRole('button', { name: 'Create project' }).click();
  await heading('Web Shop');

  for (const env of ['dev', 'prod']) {
    const envForm = page.locator('form', { has: page.getByRole('heading', { name: 'New environment' }) });
    await envForm.getByLabel('Name').fill(env);
    await envForm.getByRole('button', { name: 'Add environment' }).click();
    await page.getByRole('cell', { name: env, exact: true }).first().waitFor();
  }
  // A name the server refuses: its problem shows next to the field.
  const envForm = page.locator('form', { has: page.getByRole('heading', { name: 'New environment' }) });
  await envForm.getByLabel('Name').fill('dev');
  await envForm.getByRole('button', { name: 'Add environment' }).click();
  await envForm.locator('.error-box, .field-error').filter({ hasText: /./ }).first().waitFor();
  await shot('03-environments');
});

test('create a webhook integration through the generated form; a bad value is shown at its field', async () => {
  await page.getByRole('link', { name: 'Acme Corp' }).click();
  await heading('Acme Corp');
  await shot('02-workspace');
  await page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Integrations' }).click();
  await heading('Integrations of Acme Corp');
  await page.getByRole('link', { name: 'New integration' }).click();
  await heading('New integration');
  await page.getByRole('link', { name: 'Webhook', exact: true }).click();
  await heading('New Webhook integration');

  const form = page.locator('form.integration-form');
  await form.getByRole('textbox', { name: 'Name', exact: true }).fill('Deploy hook');
  await form.getByRole('combobox', { name: 'Project', exact: true }).selectOption({ label: 'Web Shop' });
  await form.getByRole('checkbox', { name: 'dev', exact: true }).check();
  // Events are checkboxes grouped by source; Space toggles one from the keyboard.
  const secrets = form.getByRole('group', { name: 'Secrets', exact: true });
  await secrets.getByLabel('Secret added').focus();
  await page.keyboard.press('Space');
  await secrets.getByLabel('Secret updated').check();
  assert.ok(await secrets.getByLabel('Secret added').isChecked());
  // The metadata fields come from the type's JSON Schema: the credential is a password input.
  const signing = form.getByRole('textbox', { name: 'Signing secret', exact: true });
  assert.equal(await signing.getAttribute('type'), 'password');
  await signing.fill(SIGNING_SECRET);
  const url = form.getByRole('textbox', { name: 'URL', exact: true });
  await url.fill('not a url');
  await form.getByRole('button', { name: 'Create integration' }).click();

  const urlField = form.locator('.field', { has: page.getByRole('textbox', { name: 'URL', exact: true }) });
  const urlError = urlField.locator('.field-error');
  await urlError.filter({ hasText: 'absolute URL' }).waitFor();
  assert.equal(await url.getAttribute('aria-invalid'), 'true');
  // The error is announced with the input (aria-describedby).
  const describedBy = (await url.getAttribute('aria-describedby')).split(' ');
  assert.ok(describedBy.includes(await urlError.getAttribute('id')));
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-invalid')), 'true', 'focus moves to the bad field');
  await shot('05-integration-form-error');

  await url.fill(sink.url);
  await form.getByRole('button', { name: 'Validate' }).click();
  await form.getByRole('heading', { name: 'All checks passed' }).waitFor();
  assert.equal(await urlError.isHidden(), true);
  await shot('06-integration-form-validated');
  await form.getByRole('button', { name: 'Create integration' }).click();
  await heading('Deploy hook');
  // The live checks (validate, create) reached the sink, signed.
  assert.ok(sink.received.length >= 2);
  assert.ok(sink.received.every((r) => r.valid), 'every delivery carries a valid signature');
});

test('a changed secret is delivered and its run shows as succeeded', async () => {
  await page.getByRole('link', { name: 'Acme Corp' }).click();
  await page.getByRole('link', { name: 'Web Shop' }).click();
  await heading('Web Shop');
  const form = page.locator('form', { has: page.getByRole('heading', { name: 'New secret' }) });
  await form.getByLabel('Key').fill('DATABASE_URL');
  await form.getByLabel('Value in dev').fill(SECRET_VALUE_1);
  await form.getByLabel('Note').fill('primary database');
  await form.getByRole('button', { name: 'Add secret' }).click();
  const row = page.locator('tr[data-key="DATABASE_URL"]');
  await row.waitFor();
  // Values stay hidden until revealed.
  assert.ok(!(await page.content()).includes(SECRET_VALUE_1), 'the value is not on the page before reveal');

  await row.getByRole('button', { name: 'Change DATABASE_URL' }).click();
  const change = page.locator('form', { has: page.getByRole('heading', { name: 'Change DATABASE_URL' }) });
  await change.getByLabel('Value in dev').fill(SECRET_VALUE_2);
  await change.getByRole('button', { name: 'Save' }).click();
  await row.getByText('v2').waitFor();

  await row.getByRole('button', { name: 'Reveal DATABASE_URL' }).click();
  await page.getByText(SECRET_VALUE_2).waitFor();
  await row.getByRole('button', { name: 'History of DATABASE_URL' }).click();
  await page.getByRole('heading', { name: 'History of DATABASE_URL' }).waitFor();
  await page.locator('table.versions tbody tr').nth(1).waitFor();
  assert.equal(await page.locator('table.versions tbody tr').count(), 2);
  await shot('09-secrets');

  await page.getByRole('link', { name: 'Acme Corp' }).click();
  await page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Integrations' }).click();
  await page.getByRole('link', { name: 'Deploy hook' }).click();
  await heading('Deploy hook');
  // The page refreshes its runs: wait for both (added, updated) to succeed.
  await page.locator('tr.run[data-status="succeeded"]').nth(1).waitFor({ timeout: 30_000 });
  const first = page.locator('tr.run').first();
  await first.getByRole('button', { name: /^Attempts of run/ }).click();
  await page.locator('table.attempts').first().getByText('succeeded').waitFor();
  await shot('07-integration');

  const events = sink.received.filter((r) => r.json?.type === 'SECRET_UPDATED' || r.json?.type === 'SECRET_ADDED');
  assert.deepEqual(events.map((e) => e.json.type).sort(), ['SECRET_ADDED', 'SECRET_UPDATED']);
  assert.ok(events.every((e) => e.valid && e.path === '/hooks/keywire' && /json/.test(e.contentType)));
  for (const r of sink.received) {
    assert.ok(!r.body.includes(SECRET_VALUE_1) && !r.body.includes(SECRET_VALUE_2), 'no secret value is delivered in an event');
  }

  await page.getByRole('button', { name: 'Send test event' }).click();
  await page.getByText('Test event delivered.').waitFor();

  await page.getByRole('link', { name: 'Integrations' }).first().click();
  await heading('Integrations of Acme Corp');
  const listed = page.locator('tr[data-slug]', { hasText: 'Deploy hook' });
  await listed.locator('.last-run').getByText('succeeded').waitFor();
  assert.equal((await listed.locator('.failures').textContent()).trim(), '0');
  assert.match(await listed.textContent(), /Web Shop · dev/);
  await shot('08-integrations');
});

test('editing shows credentials as configured, never their value', async () => {
  await page.getByRole('link', { name: 'Deploy hook' }).click();
  await heading('Deploy hook');
  assert.ok(!(await page.content()).includes(SIGNING_SECRET.slice(6)), 'the signing secret is not on the page');
  await page.getByRole('link', { name: 'Edit' }).click();
  await heading('Edit Deploy hook');
  const form = page.locator('form.integration-form');
  const signing = form.getByRole('textbox', { name: 'Signing secret', exact: true });
  assert.equal(await signing.inputValue(), '');
  assert.match(await signing.getAttribute('placeholder'), /configured/);
  await form.locator('.field', { has: page.getByRole('textbox', { name: 'Signing secret', exact: true }) }).getByText('configured', { exact: true }).waitFor();
  assert.equal(await form.getByRole('textbox', { name: 'URL', exact: true }).inputValue(), sink.url);
  await shot('10-integration-edit');
  // Saving with the credential left empty keeps it: the next test event is still signed.
  await form.getByRole('textbox', { name: 'Name', exact: true }).fill('Deploy hook (signed)');
  await form.getByRole('button', { name: 'Save changes' }).click();
  await heading('Deploy hook (signed)');
  const before = sink.received.length;
  await page.getByRole('button', { name: 'Send test event' }).click();
  await page.getByText('Test event delivered.').waitFor();
  assert.ok(sink.received.length > before && sink.received.at(-1).valid);
});

test('a credential keywire generates is shown once, then only as configured', async () => {
  await page.goto(`${keywire.url}/#/w/acme-corp/integrations/new/webhook`);
  await heading('New Webhook integration');
  const form = page.locator('form.integration-form');
  await form.getByRole('textbox', { name: 'Name', exact: true }).fill('Audit hook');
  await form.getByRole('group', { name: 'Projects', exact: true }).getByLabel('Project created').check();
  await form.getByRole('textbox', { name: 'URL', exact: true }).fill(`${sink.url}?audit`);
  // No signing secret typed, and no live check (which would be signed with a secret the sink
  // does not know): saved with ?validate=false.
  await form.getByLabel(/Check the connection/).uncheck();
  await form.getByRole('button', { name: 'Create integration' }).click();
  const ready = page.getByRole('heading', { level: 1, name: 'Audit hook is ready', exact: true });
  const refused = form.locator('.field', { has: page.getByRole('textbox', { name: 'Signing secret', exact: true }) }).locator('.field-error');
  await ready.or(refused.filter({ hasText: /./ })).waitFor();
  if (await ready.isVisible()) {
    // This server generates a missing signing secret: the console shows it this once.
    const shown = (await page.locator('code[data-generated="/signingSecret"]').textContent()).trim();
    assert.match(shown, /^whsec_[A-Za-z0-9+/=]{32,}$/);
    await shot('15-generated-secret');
    await page.getByRole('link', { name: /continue/ }).click();
    await heading('Audit hook');
    assert.ok(!(await page.content()).includes(shown.slice(6)), 'the generated secret is not shown again');
    await page.locator('.settings-list').getByText('configured').first().waitFor();
  } else {
    // This server requires it: the problem is shown next to the field.
    assert.equal(await form.getByRole('textbox', { name: 'Signing secret', exact: true }).getAttribute('aria-invalid'), 'true');
  }
});

test('an infrastructure integration: sync settings, a sync plan, a sync run and its retry', async () => {
  await page.goto(`${keywire.url}/#/w/acme-corp/integrations/new/github_actions`);
  await heading('New GitHub Actions integration');
  const form = page.locator('form.integration-form');
  await form.getByRole('textbox', { name: 'Name', exact: true }).fill('Repo secrets');
  // The type needs a project and at least one environment: the form says so before the server.
  await form.getByRole('button', { name: 'Create integration' }).click();
  await form.locator('.field', { has: page.getByRole('combobox', { name: 'Project', exact: true }) })
    .locator('.field-error').filter({ hasText: 'needs a project' }).waitFor();
  await form.getByRole('combobox', { name: 'Project', exact: true }).selectOption({ label: 'Web Shop' });
  await form.getByRole('checkbox', { name: 'dev', exact: true }).check();
  await form.getByRole('group', { name: 'Secrets', exact: true }).getByLabel('Secret updated').check();
  assert.ok(await form.getByRole('checkbox', { name: /^Upsert/ }).isChecked(), 'upsert is preselected');
  await form.getByRole('textbox', { name: 'Key template', exact: true }).fill('APP_{{key}}');
  await form.getByRole('textbox', { name: 'Target of dev', exact: true }).fill('staging');
  await form.getByRole('textbox', { name: 'Owner', exact: true }).fill('acme');
  await form.getByRole('textbox', { name: 'Repo', exact: true }).fill('shop');
  await form.getByRole('textbox', { name: 'Token', exact: true }).fill('github_pat_console_test_token');
  await form.getByRole('textbox', { name: 'API base URL', exact: true }).fill(sink.github);
  await form.getByLabel(/Check the connection/).uncheck();
  await shot('16-infrastructure-form');
  await form.getByRole('button', { name: 'Create integration' }).click();
  await heading('Repo secrets');
  const sync = page.locator('.sync-settings');
  await sync.getByText('APP_{{key}}').waitFor();
  await sync.getByText('staging').waitFor();

  // The plan needs the provider's keys; the fake provider is down: the problem is shown.
  await page.getByRole('button', { name: 'Preview sync' }).click();
  await page.locator('.output').locator('.plan, .error-box, .result').first().waitFor();
  const output = await page.locator('.output').textContent();
  assert.ok(/Sync plan|HTTP \d{3}|cannot/.test(output), output);
  // A sync run is queued, fails after its attempts (retryable 503s), and can be retried.
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.locator('.output').getByText(/queued|cannot/).waitFor();
  if (/queued/.test(await page.locator('.output').textContent())) {
    const run = page.locator('tr.run[data-status="failed"]').first();
    await run.waitFor({ timeout: 30_000 });
    assert.equal((await run.locator('td').nth(1).textContent()).trim(), 'sync');
    await run.getByRole('button', { name: /^Attempts of run/ }).click();
    await page.locator('table.attempts').first().getByText('503').first().waitFor();
    await shot('17-infrastructure-runs');
    await run.getByRole('button', { name: /^Retry run/ }).click();
    await page.locator('.toasts').getByText('Run queued again.').waitFor();
  }
  assert.ok(sink.received.some((r) => r.path.startsWith('/gh/api/v3/')), 'the provider was called');
  assert.ok(sink.received.filter((r) => r.path.startsWith('/gh/')).every((r) => !r.body.includes(SECRET_VALUE_2)), 'a failed call leaks no value');
});

test('every registered type gets a generated form with labelled controls', async () => {
  const types = (await (await fetch(`${keywire.url}/api/v1/integration-types`, { headers: { Authorization: `Bearer ${keywire.token}` } })).json()).items;
  assert.ok(types.length >= 2);
  for (const type of types) {
    await page.goto(`${keywire.url}/#/w/acme-corp/integrations/new/${type.type}`);
    await heading(`New ${type.name} integration`);
    const form = page.locator('form.integration-form');
    for (const name of Object.keys(type.metadataSchema.properties ?? {})) {
      await form.locator(`.settings [data-pointer="/${name}"]`).waitFor();
    }
    // Every control has a label a screen reader announces.
    const unlabelled = await form.evaluate((f) => [...f.querySelectorAll('input, select, textarea')]
      .filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label'))
      .map((c) => c.outerHTML));
    assert.deepEqual(unlabelled, [], `${type.type}: controls without a label`);
    for (const pointer of type.secretFields ?? []) {
      const field = form.locator(`.settings [data-pointer="${pointer}"]`);
      const inputs = field.locator('input:not([type="checkbox"])');
      for (const input of await inputs.all()) assert.equal(await input.getAttribute('type'), 'password', `${type.type} ${pointer}`);
    }
    const events = await form.locator('input[name="notifyOn"]').count();
    assert.equal(events, type.permittedEvents.length, `${type.type}: event checkboxes`);
    assert.equal(await form.locator('input[name="actions"]').count(), type.permittedActions.length, `${type.type}: action checkboxes`);
    const project = form.getByRole('combobox', { name: 'Project', exact: true });
    assert.equal(await project.getAttribute('aria-required'), type.scope.projectRequired || type.scope.environments !== 'any' ? 'true' : null);
    await shot(`20-form-${type.type}`);
  }
});

test('readable at phone width', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${keywire.url}/#/i/deploy-hook`);
  await heading('Deploy hook (signed)');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the integration page is ${overflow}px wider than a phone`);
  await shot('11-phone-integration');
  await page.getByRole('link', { name: 'Integrations' }).first().click();
  await heading('Integrations of Acme Corp');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await shot('12-phone-integrations');
  await page.getByRole('link', { name: 'New integration' }).click();
  await page.getByRole('link', { name: 'Webhook', exact: true }).click();
  await heading('New Webhook integration');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await shot('13-phone-integration-form');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('no script errors and no Content-Security-Policy violations', () => {
  assert.deepEqual(problems, []);
});

test('nothing the console sent ends up in the server log', () => {
  const logs = keywire.logs();
  assert.ok(logs.includes('request'), 'the server logged requests');
  for (const secret of [SECRET_VALUE_1, SECRET_VALUE_2, SIGNING_SECRET, keywire.token, 'github_pat_console_test_token']) {
    assert.ok(!logs.includes(secret), 'a secret value or token is in the log');
  }
});
