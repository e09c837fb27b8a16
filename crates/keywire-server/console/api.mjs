// The API client: the token lives in session storage (gone when the tab closes), is sent as a
// bearer header, and no cookie is ever used (fetch with credentials: 'omit').

const TOKEN_KEY = 'keywire.token';

/** The signed-in token, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keeps the token for this tab. */
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** Forgets the token. */
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed API call: the RFC 9457 problem document's fields. */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code ?? 'http_error';
    this.detail = problem.detail ?? problem.title ?? `the server answered HTTP ${status}`;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

/** `/api/v1` + path with a query string from `query` (undefined values left out). */
export function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return `/api/v1${path}${qs ? `?${qs}` : ''}`;
}

/** Path segment, escaped. */
export function seg(value) {
  return encodeURIComponent(value);
}

/**
 * Calls the API. Resolves to the parsed JSON (null for 204); rejects with ApiError. A 401
 * forgets the token and tells the app (event `keywire:signed-out`).
 */
export async function api(method, path, { body, query, tokenOverride } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const bearer = tokenOverride ?? token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, { detail: `cannot reach the server (${err.message})`, code: 'network' });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !tokenOverride) {
      signOut();
      window.dispatchEvent(new CustomEvent('keywire:signed-out'));
    }
    throw new ApiError(response.status, data ?? {});
  }
  return data;
}

/** Every item of a paginated list (at most `max`). */
export async function all(path, query = {}, max = 1000) {
  const items = [];
  let cursor;
  do {
    const page = await api('GET', path, { query: { ...query, limit: 200, cursor } });
    items.push(...(page?.items ?? []));
    cursor = page?.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

let typesCache = null;
/** The integration types (fetched once per page load). */
export async function integrationTypes() {
  if (!typesCache) {
    typesCache = api('GET', '/integration-types').then((r) => r.items).catch((e) => {
      typesCache = null;
      throw e;
    });
  }
  return typesCache;
}
