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
  const headers = { Accept: as === "json" ? "application/json" : "*/*" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob) {
    headers["Content-Type"] = "application/octet-stream";
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
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
