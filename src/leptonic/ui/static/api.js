// The REST API client: bearer token from sessionStorage, JSON in and out,
// errors as ApiError carrying the server's {"error": {code, message, field}}.

export const API_ROOT = "/api/v1";
const TOKEN_KEY = "leptonic.token";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Why ``token`` cannot be an API token, or null when it can. Tokens are printable
 * ASCII; a pasted one often brings a stray (invisible) space or the "…" of the
 * placeholder along, which the browser would refuse to put in a request header.
 */
export function tokenProblem(token) {
  const m = /[^\x21-\x7E]/u.exec(token);
  if (!m) return null;
  const ch = m[0];
  const code = `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  const where = `character ${[...token.slice(0, m.index)].length + 1}`;
  if (ch === " ") return `the token has a space in it (${where}); paste it again`;
  if (ch.codePointAt(0) < 0x80) return `the token has a control character (${code}, ${where}); paste it again`;
  const what = LOOKALIKES[ch] ? `${LOOKALIKES[ch]}, ` : "";
  return `the token has a character that is not plain ASCII (${what}${code}, ${where}: a stray space or '…'?); paste it again`;
}

const LOOKALIKES = {
  "\u00A0": "a no-break space",
  "\u200B": "a zero-width space",
  "\u200C": "a zero-width non-joiner",
  "\u200D": "a zero-width joiner",
  "\u2026": "an ellipsis '…'",
  "\uFEFF": "a zero-width no-break space",
};

/** "/workspaces/a b/x" from path segments, each escaped. */
export function path(...segments) {
  return "/" + segments.map((s) => encodeURIComponent(String(s))).join("/");
}

/**
 * Call the API: api("/workspaces", {method, query, body, signal, as}).
 * body: a plain object is sent as JSON, a Blob / File as the raw request body.
 * as: "json" (default) or "text". 204 answers give null.
 */
export async function api(route, { method = "GET", query = null, body, signal, as = "json" } = {}) {
  const url = new URL(API_ROOT + route, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  const fields = { Accept: as === "json" ? "application/json" : "*/*" };
  const token = getToken();
  if (token) fields.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob) {
    fields["Content-Type"] = "application/octet-stream";
    payload = body;
  } else if (body !== undefined) {
    fields["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  // Build the headers before fetching, so that a value the browser refuses (a token
  // holding a non-Latin-1 character) is not mistaken for the server being down.
  let headers;
  try {
    headers = new Headers(fields);
  } catch {
    const problem = (token && tokenProblem(token)) || "it cannot be sent in a request header; sign in again";
    const error = new ApiError(0, "invalid_token", `invalid API token: ${problem}`);
    window.dispatchEvent(new CustomEvent("leptonic:unauthenticated", { detail: error }));
    throw error;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, signal, credentials: "omit" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "cannot reach the Leptonic server; check that it is running");
  }
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return null;
  return as === "text" ? response.text() : response.json();
}

async function toError(response) {
  let info = null;
  try {
    info = (await response.json()).error;
  } catch {
    // not a JSON body
  }
  const error = new ApiError(
    response.status,
    info?.code || "http_error",
    info?.message || `the server answered ${response.status} ${response.statusText}`,
    info?.field || null,
  );
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent("leptonic:unauthenticated", { detail: error }));
  }
  return error;
}

/** Every item of a paginated list (follows next_offset). */
export async function listAll(route, { query = {}, signal, max = 5000 } = {}) {
  const items = [];
  let offset = 0;
  while (offset !== null && items.length < max) {
    const page = await api(route, { query: { ...query, limit: 500, offset }, signal });
    items.push(...page.items);
    offset = page.next_offset;
  }
  return items;
}
