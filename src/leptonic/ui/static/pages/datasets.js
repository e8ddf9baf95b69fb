// Datasets: the list with an upload form, and a version's page: schema, quality report,
// PII map, masked preview, lineage and the "train a model" form.

import { api, listAll, path } from "../api.js";
import { h, replace } from "../dom.js";
import { can, flash, navigate, onSubmit, rawPii, showError } from "../shell.js";
import {
  badge, timeCell, field, fmtBytes, fmtDate, fmtNum, fmtPct, pageHeader, piiBadge, rateBar, refLink,
  route, section, table, tiles,
} from "../ui.js";

const CANDIDATES = [
  ["logistic", "Logistic regression (scorecard)"],
  ["lightgbm", "Gradient-boosted trees (LightGBM)"],
  ["mlp", "Neural network (MLP)"],
];

export async function datasetsPage(ctx) {
  const [ws] = ctx.params;
  const datasets = await listAll(path("workspaces", ws, "datasets"), { signal: ctx.signal });
  ctx.root.append(
    pageHeader({ kicker: `Workspace ${ws}`, title: "Datasets", subtitle: "Immutable versions with schema, quality report and PII map." }),
    section(
      "Datasets",
      table(
        [
          { label: "Dataset", cell: (d) => h("a", { class: "strong", href: route("w", ws, "datasets", d.name) }, d.name) },
          { label: "Description", cell: (d) => d.description || h("span", { class: "muted" }, "—") },
          { label: "Created", cell: (d) => timeCell(d.created_at) },
        ],
        datasets,
        { caption: "Datasets", empty: "No datasets yet." },
      ),
    ),
  );
  if (can(ws, "developer")) ctx.root.append(uploadForm(ws));
}

function uploadForm(ws) {
  const file = h("input", { type: "file", name: "file", required: true, accept: ".csv,.tsv,.parquet,.json,.jsonl,.ndjson" });
  const name = h("input", { name: "name", required: true, placeholder: "applicants" });
  file.addEventListener("change", () => {
    const f = file.files[0];
    if (f && !name.value) name.value = f.name.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9_-]+/g, "-");
  });
  const form = h(
    "form",
    { class: "form grid-form" },
    field("File (CSV, Parquet or JSON lines)", file),
    field("Dataset name", name),
    field("Target column (optional)", h("input", { name: "target", placeholder: "default" })),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button primary" }, "Upload")),
  );
  onSubmit(form, async (data) => {
    const f = data.get("file");
    const dataset = String(data.get("name")).trim();
    const out = await api(path("workspaces", ws, "datasets", dataset, "versions"), {
      method: "POST",
      body: f,
      query: { filename: f.name, target: String(data.get("target") || "").trim() },
    });
    flash(out.created
      ? `Added ${dataset} version ${out.version.version} (${fmtNum(out.version.num_rows)} rows).`
      : `This file is already ${dataset} version ${out.version.version}.`);
    navigate(route("w", ws, "datasets", dataset, out.version.version));
  });
  return section("Upload a new version", form);
}

export async function datasetPage(ctx) {
  const [ws, name, versionParam] = ctx.params;
  const { signal } = ctx;
  const versions = await listAll(path("workspaces", ws, "datasets", name, "versions"), { signal });
  if (!versions.length) throw new Error(`dataset ${name} has no versions`);
  const wanted = versionParam ? Number(versionParam) : versions[versions.length - 1].version;
  const dv = versions.find((v) => v.version === wanted) ||
    (await api(path("workspaces", ws, "datasets", name, "versions", wanted), { signal }));
  const ref = `leptonic://${ws}/dataset/${name}/${dv.version}`;

  const picker = h(
    "select",
    { onchange: (e) => navigate(route("w", ws, "datasets", name, e.target.value)) },
    versions.map((v) => h("option", { value: v.version, selected: v.version === dv.version }, `v${v.version} · ${fmtDate(v.created_at)}`)),
  );
  const q = dv.quality || {};
  const issues = q.issues || [];
  ctx.root.append(
    pageHeader({
      kicker: h("span", {}, h("a", { href: route("w", ws, "datasets") }, `Workspace ${ws} · Datasets`)),
      title: `${name} v${dv.version}`,
      subtitle: `Added by ${dv.created_by} on ${fmtDate(dv.created_at)} from ${dv.source?.format || "a file"}.`,
      actions: [h("div", { class: "field compact" }, h("label", { for: "version-picker" }, "Version"), Object.assign(picker, { id: "version-picker" }))],
    }),
    tiles([
      ["Rows", fmtNum(dv.num_rows)],
      ["Columns", fmtNum(dv.num_columns)],
      ["Size (Parquet)", fmtBytes(dv.size_bytes)],
      ["PII columns", fmtNum(Object.keys(dv.pii || {}).length)],
      ["Quality issues", fmtNum(issues.length)],
      ["Content hash", h("code", { title: dv.content_hash }, dv.content_hash.slice(0, 12))],
    ]),
    schemaSection(dv),
    qualitySection(dv),
    piiSection(dv),
  );
  const previewBox = section("Preview", h("p", { class: "muted" }, "Loading…"));
  const lineageBox = section("Lineage", h("p", { class: "muted" }, "Loading…"));
  ctx.root.append(previewBox, lineageBox);
  if (can(ws, "developer")) ctx.root.append(trainForm(ws, name, dv));
  await Promise.all([
    loadPreview(ctx, ws, name, dv, previewBox, false).catch(showError),
    loadLineage(ctx, ws, ref, lineageBox).catch(showError),
  ]);
}

function schemaSection(dv) {
  const stats = dv.quality?.columns || {};
  return section(
    "Schema",
    table(
      [
        { label: "Column", cell: (c) => h("code", {}, c.name) },
        { label: "Type", cell: (c) => c.dtype },
        { label: "Role", cell: (c) => badge(c.role) },
        { label: "PII", cell: (c) => (c.pii ? piiBadge(c.pii) : h("span", { class: "muted" }, "—")) },
        { label: "Nullable", cell: (c) => (c.nullable ? "yes" : "no") },
        { label: "Missing", num: true, cell: (c) => fmtPct(stats[c.name]?.missing_rate) },
        { label: "Distinct", num: true, cell: (c) => fmtNum(stats[c.name]?.distinct) },
      ],
      dv.columns,
      { caption: "Schema" },
    ),
  );
}

function qualitySection(dv) {
  const q = dv.quality || {};
  const issues = q.issues || [];
  const cols = Object.entries(q.columns || {});
  const parts = [];
  parts.push(
    h("h3", {}, "Issues"),
    issues.length
      ? h("ul", { class: "issues" }, issues.map((i) =>
          h("li", {}, badge(i.severity), i.column ? h("code", {}, i.column) : null, h("span", {}, i.message))))
      : h("p", { class: "ok-text" }, "No issues found."),
  );
  const facts = [
    ["Duplicate rows", `${fmtNum(q.duplicate_rows)} (${fmtPct(q.duplicate_rate)})`],
    ["Constant columns", (q.constant_columns || []).join(", ") || "none"],
    ["Empty columns", (q.all_null_columns || []).join(", ") || "none"],
  ];
  if (q.target) {
    const t = q.target;
    const dist = t.rates
      ? Object.entries(t.rates).map(([k, r]) => `${k}: ${fmtPct(r)} (${fmtNum(t.counts?.[k])})`).join(" · ")
      : `${t.kind || ""}`;
    facts.unshift(["Target", h("span", {}, h("code", {}, t.column), ` — ${dist}; ${fmtNum(t.missing)} missing`)]);
  }
  parts.push(h("h3", {}, "Summary"), h("dl", { class: "details" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  parts.push(
    h("h3", {}, "Columns"),
    table(
      [
        { label: "Column", cell: ([n]) => h("code", {}, n) },
        { label: "Missing", cell: ([, s]) => h("span", { class: "bar-cell" }, rateBar(s.missing_rate, s.missing_rate > 0.2 ? "bad" : "info"), fmtPct(s.missing_rate)) },
        { label: "Outliers", num: true, cell: ([, s]) => (s.outliers === undefined ? "—" : `${fmtNum(s.outliers)} (${fmtPct(s.outlier_rate)})`) },
        { label: "Min", num: true, cell: ([, s]) => fmtNum(s.min) },
        { label: "Q1", num: true, cell: ([, s]) => fmtNum(s.q1) },
        { label: "Mean", num: true, cell: ([, s]) => fmtNum(s.mean) },
        { label: "Q3", num: true, cell: ([, s]) => fmtNum(s.q3) },
        { label: "Max", num: true, cell: ([, s]) => fmtNum(s.max) },
      ],
      cols,
      { caption: "Column statistics" },
    ),
  );
  return section("Quality report", ...parts);
}

function piiSection(dv) {
  const entries = Object.entries(dv.pii || {});
  return section(
    "PII map",
    entries.length
      ? [
          h("p", { class: "muted" }, "Columns detected as personal data. They are masked in previews, logs and prediction logs unless the caller has the raw_pii grant, and left out of model features unless a run allows them."),
          table(
            [
              { label: "Column", cell: ([c]) => h("code", {}, c) },
              { label: "Kind", cell: ([, k]) => piiBadge(k) },
            ],
            entries,
            { caption: "PII map" },
          ),
        ]
      : h("p", { class: "ok-text" }, "No personal data detected."),
  );
}

async function loadPreview(ctx, ws, name, dv, box, raw) {
  const data = await api(path("workspaces", ws, "datasets", name, "preview"), {
    query: { version: dv.version, limit: 20, raw: raw ? "true" : null },
    signal: ctx.signal,
  });
  const piiCols = new Set(Object.keys(dv.pii || {}));
  const note = data.masked
    ? h("p", { class: "muted" }, "Personal data is masked: each value is replaced by a salted hash.")
    : raw
      ? h("p", { class: "warn-text" }, "Showing raw personal data.")
      : null;
  const toggle = rawPii(ws) && piiCols.size
    ? h("button", {
        type: "button",
        class: "button secondary small",
        onclick: () => loadPreview(ctx, ws, name, dv, box, !raw).catch(showError),
      }, raw ? "Mask personal data" : "Show raw personal data")
    : null;
  const t = table(
    data.columns.map((c) => ({
      label: piiCols.has(c) ? h("span", {}, c, " ", h("span", { class: "badge badge-pii small" }, "PII")) : c,
      cell: (row) => {
        const v = row[c];
        const text = v === null || v === undefined ? "∅" : typeof v === "object" ? JSON.stringify(v) : String(v);
        if (v === null || v === undefined) return h("span", { class: "muted", title: "missing" }, text);
        return piiCols.has(c) && data.masked ? h("span", { class: "masked" }, text) : text;
      },
    })),
    data.rows,
    { caption: "First rows", empty: "The dataset has no rows." },
  );
  t.classList?.add("preview");
  replace(box, h("h2", { id: "s-preview" }, `Preview (first ${data.rows.length} rows)`), h("div", { class: "row-between" }, note, toggle), t);
}

async function loadLineage(ctx, ws, ref, box) {
  const [up, down] = await Promise.all(
    ["upstream", "downstream"].map((direction) =>
      listAll(path("workspaces", ws, "lineage"), { query: { ref, direction }, signal: ctx.signal })),
  );
  replace(box, h("h2", { id: "s-lineage" }, "Lineage"), lineageView(up, down));
}

/** Upstream and downstream objects side by side, each indented by its depth. */
export function lineageView(up, down) {
  const list = (items, empty) =>
    items.length
      ? h("ul", { class: "lineage-list" }, items.map((i) => {
          const li = h("li", { class: `depth-${Math.min(i.depth, 4)}` }, refLink(i.ref));
          return li;
        }))
      : h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "lineage" },
    h("div", {}, h("h3", {}, "Upstream (made from)"), list(up, "Nothing upstream: this came from outside the platform.")),
    h("div", {}, h("h3", {}, "Downstream (made from this)"), list(down, "Nothing has been made from this yet.")),
  );
}

function trainForm(ws, name, dv) {
  const target = dv.quality?.target?.column;
  const usable = dv.columns.filter((c) => !["id", "pii", "ignore"].includes(c.role));
  const targetSelect = h(
    "select",
    { name: "target", required: true },
    usable.map((c) => h("option", { value: c.name, selected: c.name === target }, c.name)),
  );
  const task = h("select", { name: "task" }, ["binary", "multiclass", "regression"].map((t) => h("option", { value: t }, t)));
  const candidates = h(
    "fieldset",
    { class: "checks" },
    h("legend", {}, "Candidates"),
    CANDIDATES.map(([value, label], k) => {
      const id = `cand-${value}`;
      return h("div", { class: "check" },
        h("input", { type: "checkbox", id, name: "candidates", value, checked: k === 0 }),
        h("label", { for: id }, label));
    }),
  );
  const form = h(
    "form",
    { class: "form grid-form" },
    field("Target column", targetSelect),
    field("Task", task),
    field("Trials", h("input", { type: "number", name: "trials", min: 1, max: 1000, value: 10, required: true }),
      "Hyperparameter trials in all, shared among the candidates."),
    field("Register as model", h("input", { name: "model", value: name, pattern: "[a-z0-9][a-z0-9_\\-]{0,62}" }),
      "Leave empty to train without registering a model version."),
    candidates,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button primary" }, "Start training")),
  );
  onSubmit(form, async (data) => {
    const chosen = data.getAll("candidates").map(String);
    if (!chosen.length) throw new Error("choose at least one candidate model family");
    const model = String(data.get("model") || "").trim();
    const out = await api(path("workspaces", ws, "runs"), {
      method: "POST",
      body: {
        dataset: name,
        version: dv.version,
        spec: {
          target: String(data.get("target")),
          task: String(data.get("task")),
          candidates: chosen,
          trials: Number(data.get("trials")),
        },
        model: model || null,
      },
    });
    flash(`Training run ${out.run_id.slice(0, 8)} queued.`);
    navigate(route("w", ws, "runs", out.run_id));
  });
  return section("Train a model", form);
}
