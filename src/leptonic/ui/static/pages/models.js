// The model registry: models, a model's versions with stages, stage history, the
// model card and the form that promotes or demotes a version.

import { api, listAll, path } from "../api.js";
import { h } from "../dom.js";
import { renderMarkdown } from "../markdown.js";
import { can, flash, navigate, onSubmit } from "../shell.js";
import {
  badge, timeCell, details, field, fmtDate, fmtNum, pageHeader, refLink, route, section, shortId, table, tiles,
} from "../ui.js";

/** from-stage → the stages a version may move to (mirrors the registry's rule). */
const TRANSITIONS = {
  candidate: ["staging", "archived"],
  staging: ["production", "candidate", "archived"],
  production: ["staging", "archived"],
  archived: ["candidate"],
};
/** Stages only admins may move a version to, or out of (mirrors ADMIN_STAGES in the API). */
const ADMIN_STAGES = new Set(["production", "archived"]);

export async function modelsPage(ctx) {
  const [ws] = ctx.params;
  const models = await listAll(path("workspaces", ws, "models"), { signal: ctx.signal });
  ctx.root.append(
    pageHeader({ kicker: `Workspace ${ws}`, title: "Models", subtitle: "Registered models, their versions and stages." }),
    section(
      "Models",
      table(
        [
          { label: "Model", cell: (m) => h("a", { class: "strong", href: route("w", ws, "models", m.name) }, m.name) },
          { label: "Task", cell: (m) => m.task },
          { label: "Description", cell: (m) => m.description || h("span", { class: "muted" }, "—") },
          { label: "Created", cell: (m) => timeCell(m.created_at) },
        ],
        models,
        { caption: "Models", empty: "No models yet: train one with a model name to register it." },
      ),
    ),
  );
}

export async function modelPage(ctx) {
  const [ws, name, versionParam] = ctx.params;
  const { signal } = ctx;
  const [versions, history] = await Promise.all([
    listAll(path("workspaces", ws, "models", name, "versions"), { signal }),
    listAll(path("workspaces", ws, "models", name, "history"), { signal }),
  ]);
  if (!versions.length) throw new Error(`model ${name} has no versions`);
  const wanted = versionParam ? Number(versionParam) : versions[versions.length - 1].version;
  const mv = versions.find((v) => v.version === wanted) ||
    (await api(path("workspaces", ws, "models", name, "versions", wanted), { signal }));
  const auc = mv.metrics?.test?.auc ?? mv.metrics?.valid?.auc;

  ctx.root.append(
    pageHeader({
      kicker: h("a", { href: route("w", ws, "models") }, `Workspace ${ws} · Models`),
      title: h("span", {}, `${name} v${mv.version} `, h("span", { id: "model-stage" }, badge(mv.stage))),
      subtitle: `${mv.task} model (${mv.flavor}) from run ${shortId(mv.run_id)}, registered by ${mv.created_by} on ${fmtDate(mv.created_at)}.`,
    }),
    tiles([
      ["Stage", badge(mv.stage)],
      ["Family", mv.flavor],
      ["Test AUC", fmtNum(auc)],
      ["Versions", fmtNum(versions.length)],
    ]),
    section(
      "Versions",
      table(
        [
          { label: "Version", cell: (v) => h("a", { class: "strong", href: route("w", ws, "models", name, v.version), "aria-current": v.version === mv.version ? "true" : null }, `v${v.version}`) },
          { label: "Stage", cell: (v) => badge(v.stage) },
          { label: "Family", cell: (v) => v.flavor },
          { label: "Test AUC", num: true, cell: (v) => fmtNum(v.metrics?.test?.auc ?? v.metrics?.valid?.auc) },
          { label: "Run", cell: (v) => h("a", { class: "mono", href: route("w", ws, "runs", v.run_id) }, shortId(v.run_id)) },
          { label: "Data", cell: (v) => refLink(v.dataset) },
          { label: "By", cell: (v) => v.created_by },
          { label: "Registered", cell: (v) => timeCell(v.created_at) },
        ],
        [...versions].reverse(),
        { caption: "Versions", rowClass: (v) => (v.version === mv.version ? "selected" : null) },
      ),
    ),
  );
  if (can(ws, "developer")) ctx.root.append(stageForm(ws, name, mv));
  ctx.root.append(
    section(
      "Stage history",
      table(
        [
          { label: "When", cell: (t) => timeCell(t.at) },
          { label: "Version", cell: (t) => `v${t.version}` },
          { label: "Change", cell: (t) => h("span", { class: "change" }, t.from_stage ? badge(t.from_stage) : h("span", { class: "muted" }, "new"), " → ", badge(t.to_stage)) },
          { label: "Who", cell: (t) => t.actor },
          { label: "Why", cell: (t) => h("span", { class: "reason" }, t.reason) },
        ],
        [...history].reverse(),
        { caption: "Stage history", empty: "No stage changes yet." },
      ),
    ),
    section("Model card", h("article", { class: "markdown", "aria-label": "Model card" }, renderMarkdown(mv.model_card || "_This version has no model card._"))),
    section(
      "Signature",
      details([
        ["Inputs", h("span", { class: "chips" }, (mv.signature?.inputs || []).map((i) => h("span", { class: "chip", title: i.type }, h("code", {}, i.name), ` ${i.type}`)))],
        ["Classes", (mv.signature?.classes || []).join(", ") || "—"],
        ["Artifact digest", h("code", {}, mv.artifact_digest)],
      ]),
    ),
  );
}

function stageForm(ws, name, mv) {
  const admin = can(ws, "admin");
  // The server's rule: moving a version to, or out of, production or archived needs
  // the admin role; so a non-admin may not move a version that is in one of them at all.
  const targets = admin || !ADMIN_STAGES.has(mv.stage)
    ? (TRANSITIONS[mv.stage] || []).filter((s) => admin || !ADMIN_STAGES.has(s))
    : [];
  if (!targets.length) {
    return section(
      "Change stage",
      h("p", { class: "muted", id: "stage-admin-note" },
        `Moving v${mv.version} out of ${mv.stage} needs the admin role: ask a workspace admin to make that change.`),
    );
  }
  const form = h(
    "form",
    { class: "form inline-form stage-form", "aria-label": "Change stage" },
    field("New stage", h("select", { name: "stage", required: true }, targets.map((s) => h("option", { value: s }, s)))),
    field("Reason", h("input", { name: "reason", required: true, maxlength: 2000, placeholder: "Why (recorded in the stage history and the audit log)" })),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button primary" }, "Change stage")),
  );
  onSubmit(form, async (data) => {
    const stage = String(data.get("stage"));
    const out = await api(path("workspaces", ws, "models", name, "versions", mv.version, "stage"), {
      method: "POST",
      body: { stage, reason: String(data.get("reason")).trim() },
    });
    flash(`${name} v${out.version} is now in ${out.stage}.`);
    navigate(route("w", ws, "models", name, out.version));
  });
  return section(`Change the stage of v${mv.version}`, form);
}
