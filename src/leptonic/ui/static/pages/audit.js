// The audit log: the platform's (GET /audit) or one workspace's, with filters and pages.

import { api, listAll, path } from "../api.js";
import { h } from "../dom.js";
import { navigate, session } from "../shell.js";
import { badge, field, pageHeader, pager, refLink, route, section, table, timeCell } from "../ui.js";

const ACTIONS = [
  "workspace.create", "dataset.add", "run.submit", "run.train", "run.cancel", "model.stage",
  "model.score",
  "endpoint.create", "endpoint.traffic", "endpoint.canary", "endpoint.promote", "endpoint.rollback",
  "endpoint.shadow", "endpoint.policy", "endpoint.feedback", "endpoint.batch", "endpoint.alert",
  "endpoint.alert_status", "endpoint.retrain", "endpoint.prune",
  "member.set", "member.remove", "user.create", "token.create", "token.revoke",
];

export async function auditPage(ctx) {
  const [ws] = ctx.params; // set on #/w/{ws}/audit
  const q = ctx.query;
  const limit = Math.min(Math.max(Number(q.limit) || 25, 1), 500);
  const offset = Math.max(Number(q.offset) || 0, 0);
  const filters = { workspace: ws ? null : q.workspace || "", actor: q.actor || "", action: q.action || "" };
  const base = ws ? route("w", ws, "audit") : "#/audit";
  const hrefFor = (o, f = filters) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) params.set(k, v);
    if (q.limit) params.set("limit", String(limit));
    if (o) params.set("offset", String(o));
    const s = params.toString();
    return s ? `${base}?${s}` : base;
  };

  const workspaces = ws ? [] : await listAll("/workspaces", { signal: ctx.signal }).catch(() => []);
  const form = h(
    "form",
    { class: "form filters", role: "search", "aria-label": "Filter the audit log" },
    ws
      ? null
      : field("Workspace", h("select", { name: "workspace" },
          h("option", { value: "" }, "all"),
          workspaces.map((w) => h("option", { value: w.name, selected: w.name === filters.workspace }, w.name)))),
    field("Actor", h("input", { name: "actor", value: filters.actor, placeholder: "user name" })),
    field("Action", h("input", { name: "action", value: filters.action, list: "audit-actions", placeholder: "e.g. model.stage" })),
    h("datalist", { id: "audit-actions" }, ACTIONS.map((a) => h("option", { value: a }))),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "button primary" }, "Filter"),
      h("a", { class: "button secondary", href: base }, "Clear")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const f = {
      workspace: ws ? null : String(data.get("workspace") || ""),
      actor: String(data.get("actor") || "").trim(),
      action: String(data.get("action") || "").trim(),
    };
    navigate(hrefFor(0, f));
  });

  const route_ = ws ? path("workspaces", ws, "audit") : "/audit";
  const page = await api(route_, {
    query: { workspace: filters.workspace, actor: filters.actor, action: filters.action, limit, offset },
    signal: ctx.signal,
  });
  ctx.root.append(
    pageHeader({
      kicker: ws ? `Workspace ${ws}` : session.me?.user.is_admin ? "Platform" : "Your workspaces",
      title: "Audit log",
      subtitle: "Who did what, newest first.",
    }),
    section("Filters", form),
    section(
      "Events",
      table(
        [
          { label: "#", num: true, cell: (e) => e.id ?? "" },
          { label: "When", cell: (e) => timeCell(e.at) },
          { label: "Actor", cell: (e) => h("span", { class: "strong" }, e.actor) },
          { label: "Action", cell: (e) => h("code", { class: "action" }, e.action) },
          { label: "Workspace", cell: (e) => (e.workspace ? badge(e.workspace, "neutral") : h("span", { class: "muted" }, "platform")) },
          { label: "Objects", cell: (e) => (e.objects.length ? h("span", { class: "refs" }, e.objects.map((o) => refLink(o))) : "—") },
          { label: "Details", cell: (e) => detailsText(e.details) },
        ],
        page.items,
        { caption: "Audit events", empty: "No events match these filters." },
      ),
      pager(page, (o) => hrefFor(o)),
    ),
  );
}

function detailsText(d) {
  const entries = Object.entries(d || {});
  if (!entries.length) return "—";
  return h("dl", { class: "kv" }, entries.map(([k, v]) => [
    h("dt", {}, k),
    h("dd", {}, typeof v === "string" ? v : JSON.stringify(v)),
  ]));
}
