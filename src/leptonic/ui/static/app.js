// The Leptonic web UI: hash routes, the top bar, signing in and out.

import { ApiError, api, clearToken, getToken, setToken, tokenProblem } from "./api.js";
import { h, replace } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { datasetPage, datasetsPage } from "./pages/datasets.js";
import { modelPage, modelsPage } from "./pages/models.js";
import { runPage, runsPage } from "./pages/runs.js";
import { workspacesPage } from "./pages/workspaces.js";
import { clearBanner, navigate, onSubmit, session, showError, showFlash } from "./shell.js";
import { field, route } from "./ui.js";

const ROUTES = [
  [/^\/signin$/, signInPage, "Sign in"],
  [/^\/workspaces$/, workspacesPage, "Workspaces"],
  [/^\/w\/([^/]+)\/datasets$/, datasetsPage, "Datasets"],
  [/^\/w\/([^/]+)\/datasets\/([^/]+)(?:\/(\d+))?$/, datasetPage, "Dataset"],
  [/^\/w\/([^/]+)\/runs$/, runsPage, "Runs"],
  [/^\/w\/([^/]+)\/runs\/([^/]+)$/, runPage, "Run"],
  [/^\/w\/([^/]+)\/models$/, modelsPage, "Models"],
  [/^\/w\/([^/]+)\/models\/([^/]+)(?:\/(\d+))?$/, modelPage, "Model"],
  [/^\/w\/([^/]+)\/audit$/, auditPage, "Audit log"],
  [/^\/audit$/, auditPage, "Audit log"],
];

let current = null; // {controller} of the page on screen

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/workspaces";
  const [pathPart, queryPart = ""] = raw.split("?");
  return { path: pathPart, query: Object.fromEntries(new URLSearchParams(queryPart)) };
}

async function render() {
  const { path, query } = parseHash();
  current?.controller.abort();
  const controller = new AbortController();
  current = { controller };
  clearBanner();
  showFlash();

  if (!getToken() && path !== "/signin") {
    navigate(`#/signin?next=${encodeURIComponent(window.location.hash || "#/workspaces")}`);
    return;
  }
  if (getToken() && !session.me) {
    try {
      session.me = await api("/me", { signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err.status !== 401) showError(err);
      if (!getToken()) return; // the 401 handler went to the sign-in page
    }
  }

  let match = null;
  let page = notFoundPage;
  let title = "Not found";
  for (const [pattern, fn, name] of ROUTES) {
    match = pattern.exec(path);
    if (match) {
      page = fn;
      title = name;
      break;
    }
  }
  let params = [];
  let notFound = null; // why the address names no page, when it cannot be read
  try {
    if (match) params = match.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
  } catch (err) {
    if (!(err instanceof URIError)) throw err;
    page = notFoundPage;
    title = "Not found";
    notFound = 'the address has a malformed %-escape ("%" must be followed by two hex digits)';
  }
  const ws = /^\/w\//.test(path) && !notFound ? params[0] : null;
  renderTopBar(path, ws);

  const main = document.getElementById("main");
  const root = h("div", { class: "page" });
  replace(main, root);
  document.title = `${title} · Leptonic`;
  const ctx = {
    params,
    query,
    notFound,
    root,
    signal: controller.signal,
    alive: () => !controller.signal.aborted,
  };
  try {
    await page(ctx);
    if (ws && ctx.alive()) sessionStorage.setItem("leptonic.workspace", ws);
  } catch (err) {
    if (!ctx.alive()) return;
    showError(err);
    if (!root.childElementCount) {
      root.append(h("div", { class: "card" }, h("h1", {}, "This page could not be shown"),
        h("p", {}, "The message above says why. ", h("a", { href: "#/workspaces" }, "Go to the workspaces"), ".")));
    }
  }
}

function renderTopBar(path, ws) {
  const nav = document.getElementById("nav");
  const account = document.getElementById("account");
  if (!getToken()) {
    replace(nav);
    replace(account);
    return;
  }
  const lastWs = ws || sessionStorage.getItem("leptonic.workspace");
  const link = (href, label, active) =>
    h("a", { href, class: active ? "active" : null, "aria-current": active ? "page" : null }, label);
  const items = [link("#/workspaces", "Workspaces", path === "/workspaces")];
  if (lastWs) {
    items.push(h("span", { class: "nav-ws", title: "workspace" }, lastWs));
    for (const [section, label] of [["datasets", "Datasets"], ["runs", "Runs"], ["models", "Models"]]) {
      items.push(link(route("w", lastWs, section), label, path.startsWith(`/w/${encodeURIComponent(lastWs)}/${section}`)));
    }
  }
  items.push(link("#/audit", "Audit log", path === "/audit" || path.endsWith("/audit")));
  replace(nav, items);
  const me = session.me?.user;
  replace(
    account,
    me
      ? h("span", { class: "who", title: me.is_admin ? "platform admin" : "" },
          me.display_name || me.name, me.is_admin ? h("span", { class: "badge badge-accent" }, "admin") : null)
      : null,
    h("button", { type: "button", class: "button ghost", onclick: signOut }, "Sign out"),
  );
}

function signOut() {
  clearToken();
  session.me = null;
  sessionStorage.removeItem("leptonic.workspace");
  navigate("#/signin");
}

async function signInPage(ctx) {
  if (getToken()) {
    clearToken();
    session.me = null;
    renderTopBar("/signin", null);
  }
  const input = h("input", {
    type: "password", name: "token", required: true, autocomplete: "off", spellcheck: "false",
    placeholder: "lep_…",
  });
  const form = h(
    "form",
    { class: "form", "aria-labelledby": "signin-title" },
    field("API token", input, "The token is kept in this browser tab only, until you sign out or close it."),
    h("button", { type: "submit", class: "button primary" }, "Sign in"),
  );
  onSubmit(form, async (data) => {
    const token = String(data.get("token") || "").trim();
    if (!token) throw new Error("paste an API token first");
    const problem = tokenProblem(token);
    if (problem) throw new ApiError(0, "invalid_token", problem);
    setToken(token);
    try {
      session.me = await api("/me");
    } catch (err) {
      clearToken();
      session.me = null;
      throw err;
    }
    const next = ctx.query.next && ctx.query.next.startsWith("#/") && !ctx.query.next.startsWith("#/signin")
      ? ctx.query.next : "#/workspaces";
    navigate(next);
  });
  ctx.root.append(
    h(
      "div",
      { class: "signin card" },
      h("h1", { id: "signin-title" }, "Sign in to Leptonic"),
      h("p", { class: "muted" },
        "Paste an API token. The first start of a server writes the admin's token to ",
        h("code", {}, "$LEPTONIC_HOME/bootstrap-token"), "; create more with ",
        h("code", {}, "leptonic tokens create USER"), "."),
      form,
    ),
  );
  input.focus();
  if (signInMessage) {
    showError(signInMessage);
    signInMessage = null;
  }
}

async function notFoundPage(ctx) {
  ctx.root.append(
    h("div", { class: "card" }, h("h1", {}, "Page not found"),
      h("p", {}, ctx.notFound ? `No page here: ${ctx.notFound}. ` : "No page here. ",
        h("a", { href: "#/workspaces" }, "Go to the workspaces"), ".")),
  );
}

let signInMessage = null; // why the last page sent the user to sign in

window.addEventListener("leptonic:unauthenticated", (event) => {
  if (!getToken() || parseHash().path === "/signin") return; // the sign-in form reports it
  clearToken();
  session.me = null;
  signInMessage = event.detail;
  navigate(`#/signin?next=${encodeURIComponent(window.location.hash)}`);
});

document.getElementById("banner-close").addEventListener("click", clearBanner);
window.addEventListener("hashchange", render);
render();
