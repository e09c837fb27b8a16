// Small DOM helpers. Text from the API only ever goes in as text nodes (never as HTML).

/**
 * Creates an element: `h('a', { href: '#/', class: 'x', onclick: fn }, 'text', child)`.
 * Attributes that are `false`, `null` or `undefined` are left out; `true` sets an empty one.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value' && 'value' in el) {
      el.value = value;
    } else if (name === 'checked' || name === 'selected') {
      el[name] = Boolean(value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, ...children);
  return el;
}

/** Appends children (strings, numbers, nodes, nested arrays; null and false skipped). */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Removes every child. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Text with `code` spans (from doc comments) as <code> elements. */
export function richText(text) {
  const parts = String(text ?? '').split('`');
  return parts.map((part, i) => (i % 2 === 1 ? h('code', {}, part) : part));
}

let ids = 0;
/** A fresh element id with a readable prefix. */
export function uid(prefix = 'id') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A time as `2026-11-28 08:58` (local) with the full ISO time as a tooltip. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '\u2014');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(iso));
  const pad = (n) => String(n).padStart(2, '0');
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h('time', { datetime: iso, title: iso }, text);
}

/** A status badge (`succeeded`, `failed`, `pending`, `running`, `enabled`, ...). */
export function badge(status, text = status) {
  return h('span', { class: `badge badge-${String(status ?? 'none').replace(/[^a-z_-]/gi, '')}` }, text ?? 'never');
}

/** Announces a message to screen readers and shows it briefly. */
export function announce(message, kind = 'info') {
  const region = document.getElementById('toast');
  if (!region) return;
  const item = h('p', { class: `toast toast-${kind}` }, message);
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 4000);
}

/** A table inside a horizontally scrolling wrapper (narrow screens). */
export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

/** A labelled input row: returns { row, input }. */
export function labelled(label, input, hint) {
  const id = input.id || uid('in');
  input.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, richText(hint)) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return { row: h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl), input };
}

/** A heading for a page, focused after navigation so screen readers hear where they are. */
export function pageTitle(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, text), ...extra);
}

/** A problem (ApiError or other) as readable text. */
export function problemText(err) {
  if (!err) return '';
  const detail = err.detail ?? err.message ?? String(err);
  return err.status ? `${detail} (HTTP ${err.status})` : detail;
}

/** A paragraph that shows an error in place (role=alert). */
export function errorBox(err) {
  return h('p', { class: 'error-box', role: 'alert' }, problemText(err));
}

/** A breadcrumb trail: [[label, href], ...]; the last one is the current page. */
export function crumbs(items) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('ol', {}, items.map(([label, href], i) =>
      h('li', {}, i === items.length - 1 ? h('span', { 'aria-current': 'page' }, label) : h('a', { href }, label)))));
}

/** Section tabs (links): [[label, href], ...], `active` is the href of the current one. */
export function tabs(items, active, label = 'Sections') {
  return h('nav', { class: 'tabs', 'aria-label': label },
    h('ul', {}, items.map(([text, href]) =>
      h('li', {}, h('a', { href, 'aria-current': href === active ? 'page' : null }, text)))));
}
