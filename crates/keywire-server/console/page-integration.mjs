// One integration: settings, events, runs with their attempts, retries, a test event, and for
// infrastructure types a sync plan (dry run) and a full sync.

import { ApiError, api, integrationTypes, seg } from './api.mjs';
import { append, announce, badge, clear, crumbs, errorBox, h, pageTitle, problemText, richText, table, time } from './dom.mjs';
import { buildFields, escapeSegment, groupEvents, humanize, pointerSegments } from './form-model.mjs';
import { confirmButton } from './page-project.mjs';
import { scopeText, typeMark } from './page-integrations.mjs';

const REFRESH_MS = 2500;

/** The stored metadata as rows (credential fields say whether they are configured). */
function settingsList(integration, descriptor) {
  const fields = descriptor ? buildFields(descriptor.metadataSchema, descriptor.secretFields ?? []) : [];
  const labels = new Map();
  const objects = new Set();
  const walk = (list) => list.forEach((f) => {
    labels.set(f.pointer, f.label);
    if (f.kind === 'object') {
      objects.add(f.pointer);
      walk(f.fields);
    }
  });
  walk(fields);
  const rows = [];
  const flat = (value, pointer) => {
    if (value && typeof value === 'object' && !Array.isArray(value) && (pointer === '' || objects.has(pointer))) {
      for (const [k, v] of Object.entries(value)) flat(v, `${pointer}/${escapeSegment(k)}`);
      return;
    }
    rows.push([pointer, typeof value === 'string' ? value : JSON.stringify(value)]);
  };
  flat(integration.metadata ?? {}, '');
  const secrets = Object.entries(integration.secretFields ?? {});
  const label = (pointer) => labels.get(pointer) ?? pointerSegments(pointer).map(humanize).join(' \u203a ');
  const items = [
    ...rows.filter(([p]) => p !== '').map(([p, v]) => [label(p), h('code', { class: 'wrap' }, v)]),
    ...secrets.map(([p, s]) => [label(p), s.configured ? h('span', { class: 'tag tag-ok' }, 'configured') : h('span', { class: 'tag' }, 'not set')]),
  ];
  if (!items.length) return h('p', { class: 'muted' }, 'No settings.');
  return h('dl', { class: 'settings-list' }, items.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function attemptsTable(detail) {
  if (!detail.attemptLog?.length) return h('p', { class: 'muted' }, 'No attempts yet.');
  return table(['#', 'Started', 'Duration', 'Outcome', 'HTTP', 'Answer or error', 'Next attempt'], detail.attemptLog.map((a) =>
    h('tr', {},
      h('td', {}, String(a.number)),
      h('td', {}, time(a.startedAt)),
      h('td', {}, `${a.durationMs} ms`),
      h('td', {}, badge(a.outcome === 'succeeded' ? 'succeeded' : 'failed', a.outcome)),
      h('td', {}, a.httpStatus ? String(a.httpStatus) : '\u2014'),
      h('td', {}, h('code', { class: 'wrap excerpt' }, a.excerpt || '')),
      h('td', {}, a.nextAttemptAt ? time(a.nextAttemptAt) : '\u2014'))), { class: 'attempts' });
}

function syncPlan(result) {
  const changes = result?.changes ?? [];
  const summary = result?.summary && typeof result.summary === 'object' ? Object.entries(result.summary) : [];
  return h('div', { class: 'plan' },
    h('h3', {}, 'Sync plan (nothing was changed)'),
    summary.length ? h('dl', { class: 'summary' }, summary.flatMap(([k, v]) => [h('dt', {}, humanize(k)), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))])) : null,
    changes.length
      ? table(['Environment', 'Target', 'Key', 'Kind', 'Action', 'Reason'], changes.map((c) => h('tr', { class: `action-${String(c.action).replace(/[^a-z_-]/gi, '')}` },
        h('td', {}, c.environment ?? ''),
        h('td', {}, h('code', {}, c.target ?? '')),
        h('td', {}, h('code', {}, c.key ?? '')),
        h('td', {}, c.kind ?? ''),
        h('td', {}, badge(c.action, c.action)),
        h('td', {}, c.reason ?? ''))), { class: 'changes' })
      : h('p', {}, 'Nothing to change: the target already matches.'));
}

/** A missing endpoint (an older server): 404 for the route, or 405. */
function unsupported(err) {
  return err instanceof ApiError && (err.status === 405 || (err.status === 404 && /no route/i.test(err.detail)));
}

/** `#/i/{slug}`. */
export async function integrationPage(main, [slug], { go }) {
  const integration = await api('GET', `/integrations/${seg(slug)}`);
  const [ws, types, project] = await Promise.all([
    api('GET', `/workspaces/${seg(integration.workspace)}`),
    integrationTypes(),
    integration.projectSlug ? api('GET', `/projects/${seg(integration.projectSlug)}`).catch(() => null) : null,
  ]);
  const descriptor = types.find((t) => t.type === integration.type);
  const infrastructure = integration.category === 'infrastructure';
  const path = `/integrations/${seg(integration.slug)}`;
  const base = `#/w/${seg(ws.slug)}`;
  const output = h('div', { class: 'output', 'aria-live': 'polite' });
  const show = (...nodes) => clear(output).append(...nodes);
  let timer = null;
  let stopped = false;

  const button = (label, action, attrs = {}) => {
    const b = h('button', {
      type: 'button',
      class: 'secondary',
      ...attrs,
      onclick: async () => {
        b.disabled = true;
        try {
          await action();
        } catch (err) {
          show(errorBox(err));
        } finally {
          b.disabled = false;
        }
      },
    }, label);
    return b;
  };

  const testButton = button('Send test event', async () => {
    show(h('p', { class: 'muted' }, 'Sending a test event\u2026'));
    const r = await api('POST', `${path}/test`);
    show(h('div', { class: r.delivered ? 'result result-ok' : 'result result-bad', role: 'status' },
      h('p', {}, h('strong', {}, r.delivered ? 'Test event delivered.' : 'Test event not delivered.'),
        ` ${r.eventType} as message `, h('code', {}, r.messageId), r.status ? `, HTTP ${r.status}` : ''),
      r.excerpt ? h('pre', { class: 'excerpt' }, r.excerpt) : null,
      r.error ? h('p', {}, r.error, r.retryable ? ' (a real delivery would be retried)' : '') : null));
  });

  const previewButton = button('Preview sync', async () => {
    show(h('p', { class: 'muted' }, 'Computing the plan\u2026'));
    try {
      show(syncPlan(await api('POST', `${path}/sync`, { query: { dryRun: true } })));
    } catch (err) {
      if (unsupported(err)) show(h('p', { class: 'result' }, `This server cannot preview a sync yet (${problemText(err)}).`));
      else throw err;
    }
  });
  const syncButton = button('Sync now', async () => {
    try {
      const r = await api('POST', `${path}/sync`);
      show(h('p', { class: 'result result-ok', role: 'status' }, 'Full sync queued', r?.run?.id ? [' as run ', h('code', {}, r.run.id)] : '', '. Its progress appears under Runs.'));
      await drawRuns();
    } catch (err) {
      if (unsupported(err)) show(h('p', { class: 'result' }, `This server cannot sync on demand yet (${problemText(err)}).`));
      else throw err;
    }
  });

  const toggleButton = button(integration.enabled ? 'Disable' : 'Enable', async () => {
    await api('PATCH', path, { body: { enabled: !integration.enabled } });
    announce(`Integration ${integration.enabled ? 'disabled' : 'enabled'}.`);
    go(`/i/${seg(integration.slug)}`);
  });

  const cleanupId = 'cleanup-on-delete';
  const cleanupBox = infrastructure ? h('input', { id: cleanupId, type: 'checkbox' }) : null;
  const deleteButton = confirmButton('Delete', 'Confirm delete', async () => {
    await api('DELETE', path, { query: { cleanup: cleanupBox?.checked ? true : undefined } });
    announce(`Integration ${integration.name} deleted.`);
    go(`/w/${seg(ws.slug)}/integrations`);
  }, { class: 'danger' });

  // Runs
  const statusFilter = h('select', { id: 'run-status' },
    ['', 'pending', 'running', 'succeeded', 'failed'].map((s) => h('option', { value: s }, s || 'all')));
  const runsBox = h('div', { class: 'runs' });
  const open = new Set();
  const details = new Map();
  let limit = 20;
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, onclick: () => { limit += 20; drawRuns(); } }, 'Show more runs');

  const runDetail = async (run) => {
    const d = await api('GET', `${path}/runs/${seg(run.id)}`);
    return h('div', { class: 'run-detail' },
      d.event ? h('p', {}, 'Event: ', h('code', {}, d.event.type), ' \u2014 ', d.event.title, ' (', time(d.event.createdAt), ')') : null,
      d.lastError ? h('p', { class: 'bad' }, 'Last error: ', d.lastError) : null,
      d.nextAttemptAt ? h('p', {}, 'Next attempt ', time(d.nextAttemptAt)) : null,
      attemptsTable(d));
  };

  const summaryBox = h('div', {});
  const drawSummary = (delivery) => {
    const d = delivery ?? {};
    clear(summaryBox).append(h('dl', { class: 'summary' },
      h('dt', {}, 'Last run'), h('dd', {}, d.lastRunStatus ? [badge(d.lastRunStatus), ' ', time(d.lastRunAt)] : 'never'),
      h('dt', {}, 'Delivered'), h('dd', {}, String(d.succeeded ?? 0)),
      h('dt', {}, 'Failed'), h('dd', {}, String(d.failed ?? 0))));
  };
  drawSummary(integration.delivery);

  const drawRuns = async () => {
    const [page, fresh] = await Promise.all([
      api('GET', `${path}/runs`, { query: { limit, status: statusFilter.value || undefined } }),
      api('GET', path).catch(() => null),
    ]);
    if (stopped) return;
    if (fresh) drawSummary(fresh.delivery);
    const rows = [];
    for (const run of page.items) {
      const detailRow = h('tr', { class: 'detail', hidden: !open.has(run.id) }, h('td', { colspan: 7 }));
      if (open.has(run.id)) {
        const cached = details.get(run.id);
        if (cached) detailRow.firstChild.append(cached);
        runDetail(run).then((node) => {
          details.set(run.id, node);
          clear(detailRow.firstChild).append(node);
        }).catch((err) => clear(detailRow.firstChild).append(errorBox(err)));
      }
      const toggle = h('button', {
        type: 'button', class: 'small secondary', 'aria-expanded': String(open.has(run.id)), 'aria-label': `Attempts of run ${run.id}`,
        onclick: async () => {
          if (open.has(run.id)) {
            open.delete(run.id);
            detailRow.hidden = true;
            toggle.setAttribute('aria-expanded', 'false');
            return;
          }
          open.add(run.id);
          toggle.setAttribute('aria-expanded', 'true');
          detailRow.hidden = false;
          clear(detailRow.firstChild).append(h('p', { class: 'muted' }, 'Loading\u2026'));
          try {
            const node = await runDetail(run);
            details.set(run.id, node);
            clear(detailRow.firstChild).append(node);
          } catch (err) {
            clear(detailRow.firstChild).append(errorBox(err));
          }
        },
      }, 'Attempts');
      const retry = run.status === 'failed'
        ? h('button', {
          type: 'button', class: 'small', 'aria-label': `Retry run ${run.id}`,
          onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              await api('POST', `${path}/runs/${seg(run.id)}/retry`);
              announce('Run queued again.');
              await drawRuns();
            } catch (err) {
              announce(problemText(err), 'error');
            }
          },
        }, 'Retry')
        : null;
      rows.push(h('tr', { class: `run run-${run.status}`, 'data-run': run.id, 'data-status': run.status },
        h('td', {}, badge(run.status)),
        h('td', {}, run.kind),
        h('td', {}, String(run.attempts)),
        h('td', {}, time(run.createdAt)),
        h('td', {}, run.finishedAt ? time(run.finishedAt) : run.nextAttemptAt ? ['next ', time(run.nextAttemptAt)] : '\u2014'),
        h('td', {}, run.lastError ? h('span', { class: 'bad' }, run.lastError) : ''),
        h('td', { class: 'buttons' }, toggle, retry)));
      rows.push(detailRow);
    }
    clear(runsBox).append(rows.length
      ? table(['Status', 'Kind', 'Attempts', 'Created', 'Finished', 'Last error', ''], rows, { class: 'runs-table' })
      : h('p', { class: 'empty' }, statusFilter.value ? `No ${statusFilter.value} runs.` : 'No runs yet: they appear when a subscribed event happens.'));
    more.hidden = !page.nextCursor;
  };
  statusFilter.addEventListener('change', () => drawRuns().catch((err) => clear(runsBox).append(errorBox(err))));

  const sinceId = 'retry-since';
  const dayAgo = new Date(Date.now() - 24 * 3600 * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  const sinceInput = h('input', {
    id: sinceId, type: 'datetime-local',
    value: `${dayAgo.getFullYear()}-${pad(dayAgo.getMonth() + 1)}-${pad(dayAgo.getDate())}T${pad(dayAgo.getHours())}:${pad(dayAgo.getMinutes())}`,
  });
  const retryAll = button('Retry failed runs', async () => {
    const since = new Date(sinceInput.value);
    if (Number.isNaN(since.getTime())) throw new ApiError(400, { detail: 'choose a time' });
    const r = await api('POST', `${path}/runs/retry`, { body: { failedSince: since.toISOString() } });
    announce(`${r.retried} failed run${r.retried === 1 ? '' : 's'} queued again.`);
    await drawRuns();
  });

  await drawRuns();
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) await drawRuns().catch(() => {});
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  timer = setTimeout(tick, REFRESH_MS);

  const subscribed = groupEvents(integration.notifyOn ?? []);
  append(main, 
    crumbs([['Workspaces', '#/'], [ws.name, base], ['Integrations', `${base}/integrations`], [integration.name, `#/i/${seg(integration.slug)}`]]),
    pageTitle(integration.name, integration.enabled ? badge('enabled', 'enabled') : badge('disabled', 'disabled')),
    h('p', { class: 'type-line' }, typeMark(integration.type, descriptor?.name), ' ', h('strong', {}, descriptor?.name ?? integration.type),
      ` (${integration.category}) \u00b7 ${scopeText(integration, new Map(project ? [[project.slug, project.name]] : []))} \u00b7 slug `, h('code', {}, integration.slug)),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Integration actions' },
      h('a', { class: 'button', href: `#/i/${seg(integration.slug)}/edit` }, 'Edit'),
      testButton,
      infrastructure ? previewButton : null,
      infrastructure ? syncButton : null,
      toggleButton,
      infrastructure ? h('span', { class: 'check inline' }, cleanupBox, h('label', { for: cleanupId }, 'clean up at the target')) : null,
      deleteButton),
    output,
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'settings-h' }, h('h2', { id: 'settings-h' }, 'Settings'), settingsList(integration, descriptor),
        integration.sync ? [
          h('h3', {}, 'Sync'),
          h('dl', { class: 'settings-list sync-settings' },
            h('dt', {}, 'Key template'), h('dd', {}, h('code', {}, integration.sync.keyTemplate ?? '{{key}}')),
            h('dt', {}, 'Keys keywire did not write'), h('dd', {}, integration.sync.onConflict === 'adopt' ? 'adopted (overwritten)' : 'skipped'),
            Object.entries(integration.sync.targets ?? {}).flatMap(([env, target]) => [h('dt', {}, `Target of ${env}`), h('dd', {}, h('code', {}, target))])),
        ] : null),
      h('section', { 'aria-labelledby': 'delivery-h' }, h('h2', { id: 'delivery-h' }, 'Delivery'),
        summaryBox,
        integration.actions?.length ? [h('h3', {}, 'Actions'), h('p', {}, integration.actions.map(humanize).join(', '))] : null)),
    h('section', { 'aria-labelledby': 'events-h' }, h('h2', { id: 'events-h' }, 'Subscribed events'),
      subscribed.length
        ? h('ul', { class: 'event-list' }, subscribed.map((g) => h('li', {}, h('strong', {}, g.label), ': ', g.events.map((e) => e.label).join(', '))))
        : h('p', { class: 'muted' }, 'None.')),
    h('section', { 'aria-labelledby': 'runs-h' },
      h('h2', { id: 'runs-h' }, 'Runs'),
      h('div', { class: 'inline' },
        h('label', { for: 'run-status' }, 'Status'), statusFilter,
        button('Refresh', drawRuns),
        h('label', { for: sinceId }, 'Failed since'), sinceInput, retryAll),
      runsBox, more),
    descriptor ? null : h('p', { class: 'error-box' }, richText(`The type \`${integration.type}\` is not registered on this server any more.`)),
  );
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
