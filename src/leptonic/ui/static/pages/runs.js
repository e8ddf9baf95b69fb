// Training runs: the list, and a run's page with live progress, metrics, plots and lineage.

import { api, listAll, path } from "../api.js";
import { h, replace } from "../dom.js";
import { can, navigate, showError, showNotice, sleep } from "../shell.js";
import {
  badge, timeCell, details, fmtDate, fmtDuration, fmtNum, pageHeader, pager, parseRef, refLink, route,
  section, shortId, table, tiles,
} from "../ui.js";
import { lineageView } from "./datasets.js";

const ACTIVE = new Set(["queued", "running"]);
const PAGE = 25;
const METRIC_ORDER = [
  "auc", "ks", "gini", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall", "f1",
  "specificity", "macro_f1", "rmse", "mae", "r2", "threshold", "ks_threshold", "positive_rate",
  "n", "tp", "fp", "tn", "fn",
];

function testMetric(run, key) {
  return run.metrics?.test?.[key] ?? run.metrics?.valid?.[key];
}

export async function runsPage(ctx) {
  const [ws] = ctx.params;
  const offset = Number(ctx.query.offset || 0);
  const status = ctx.query.status || "";
  const hrefFor = (o, s = status) => {
    const q = new URLSearchParams({ ...(s ? { status: s } : {}), ...(o ? { offset: o } : {}) }).toString();
    return q ? `${route("w", ws, "runs")}?${q}` : route("w", ws, "runs");
  };
  const filter = h(
    "select",
    { id: "run-status", onchange: (e) => navigate(hrefFor(0, e.target.value)) },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === status }, s || "any status")),
  );
  const listBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  ctx.root.append(
    pageHeader({
      kicker: `Workspace ${ws}`,
      title: "Runs",
      subtitle: "Training jobs: search, evaluation and registration.",
      actions: [h("div", { class: "field compact" }, h("label", { for: "run-status" }, "Status"), filter)],
    }),
    section("Runs", listBox),
  );
  // refresh while something is queued or running
  while (ctx.alive()) {
    const withQueued = offset === 0 && (status === "" || status === "queued");
    const [page, queued] = await Promise.all([
      api(path("workspaces", ws, "runs"), { query: { status, limit: PAGE, offset }, signal: ctx.signal }),
      withQueued
        ? api(path("workspaces", ws, "jobs"), { query: { status: "queued", limit: 50 }, signal: ctx.signal })
        : { items: [] },
    ]);
    if (!ctx.alive()) return;
    // a queued job has no run record yet: list it as a run waiting to start
    const waiting = queued.items.filter((j) => j.kind === "train" && j.run_id);
    replace(
      listBox,
      waiting.length ? queuedTable(ws, waiting) : null,
      runsTable(ws, page.items),
      pager(page, (o) => hrefFor(o)),
    );
    if (!waiting.length && !page.items.some((r) => ACTIVE.has(r.status))) return;
    await sleep(2000, ctx.signal);
  }
}

function queuedTable(ws, jobs) {
  return h(
    "div",
    { class: "queued" },
    h("h3", {}, `Waiting to start (${jobs.length})`),
    table(
      [
        { label: "Run", cell: (j) => h("a", { class: "strong mono", href: route("w", ws, "runs", j.run_id) }, shortId(j.run_id)) },
        { label: "Status", cell: (j) => badge(j.status) },
        { label: "Data", cell: (j) => refLink(`leptonic://${ws}/dataset/${j.payload.dataset}/${j.payload.version}`) },
        { label: "Target", cell: (j) => h("code", {}, j.payload.spec?.target ?? "—") },
        { label: "By", cell: (j) => j.created_by },
        { label: "Queued", cell: (j) => timeCell(j.created_at) },
      ],
      jobs,
      { caption: "Queued runs" },
    ),
    h("h3", {}, "Runs"),
  );
}

function runsTable(ws, runs) {
  return table(
    [
      { label: "Run", cell: (r) => h("a", { class: "strong mono", href: route("w", ws, "runs", r.id) }, shortId(r.id)) },
      { label: "Status", cell: (r) => badge(r.status) },
      { label: "Data", cell: (r) => (r.inputs.length ? r.inputs.map((i) => refLink(i)) : "—") },
      { label: "Target", cell: (r) => h("code", {}, r.spec?.target ?? "—") },
      { label: "Model", cell: (r) => r.params?.candidate ?? (r.spec?.candidates || []).join(", ") },
      { label: "Test AUC", num: true, cell: (r) => fmtNum(testMetric(r, "auc")) },
      { label: "By", cell: (r) => r.created_by },
      { label: "Created", cell: (r) => timeCell(r.created_at) },
      { label: "Took", num: true, cell: (r) => fmtDuration(r.started_at, r.finished_at) },
    ],
    runs,
    { caption: "Runs", empty: "No runs yet: start one from a dataset's page." },
  );
}

export async function runPage(ctx) {
  const [ws, id] = ctx.params;
  const run = await loadRun(ctx, ws, id);
  const header = h("div");
  const progressBox = section("Progress", h("p", { class: "muted" }, "Loading…"));
  const body = h("div", { class: "stack" });
  ctx.root.append(header, progressBox, body);
  renderHeader(ctx, ws, run, header);

  if (ACTIVE.has(run.status)) {
    const last = await followProgress(ctx, ws, run.id, progressBox);
    if (!ctx.alive()) return;
    const done = await waitForRun(ctx, ws, run, last);
    if (!ctx.alive()) return;
    renderHeader(ctx, ws, done, header);
    await renderResults(ctx, ws, done, body);
  } else {
    renderFinishedProgress(ctx, ws, run, progressBox);
    await renderResults(ctx, ws, run, body);
  }
}

/** The run; for a job still queued (its run record is made when it starts), a stand-in from the job. */
async function loadRun(ctx, ws, id) {
  try {
    return await api(path("workspaces", ws, "runs", id), { signal: ctx.signal });
  } catch (err) {
    if (err.status !== 404) throw err;
    let progress;
    try {
      progress = await api(path("workspaces", ws, "runs", id, "progress"), { signal: ctx.signal });
    } catch (second) {
      throw second.status === 404 ? err : second;
    }
    const job = await api(path("workspaces", ws, "jobs", progress.job_id), { signal: ctx.signal });
    return runFromJob(ws, job);
  }
}

function runFromJob(ws, job) {
  const p = job.payload || {};
  return {
    id: job.run_id,
    workspace: ws,
    status: job.status,
    spec: p.spec || {},
    seed: p.spec?.seed ?? null,
    params: {},
    metrics: {},
    timings: {},
    artifacts: {},
    inputs: p.dataset ? [`leptonic://${ws}/dataset/${p.dataset}/${p.version}`] : [],
    error: job.error,
    created_by: job.created_by,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
  };
}

function renderHeader(ctx, ws, run, box) {
  const actions = [];
  if (ACTIVE.has(run.status) && can(ws, "developer")) {
    actions.push(h("button", {
      type: "button",
      class: "button danger",
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api(path("workspaces", ws, "runs", run.id, "cancel"), { method: "POST" });
          showNotice("Cancellation requested: the run stops at its next step.");
        } catch (err) {
          showError(err);
          e.target.disabled = false;
        }
      },
    }, "Cancel run"));
  }
  if (run.artifacts?.["report.html"]) {
    actions.push(h("button", {
      type: "button",
      class: "button secondary",
      onclick: () => downloadReport(ws, run).catch(showError),
    }, "Download report"));
  }
  const dataset = run.inputs[0] ? parseRef(run.inputs[0]) : null;
  replace(
    box,
    pageHeader({
      kicker: h("a", { href: route("w", ws, "runs") }, `Workspace ${ws} · Runs`),
      title: h("span", {}, `Run ${shortId(run.id)} `, h("span", { class: "status", id: "run-status" }, badge(run.status))),
      subtitle: `${run.spec?.task || ""} model for ${run.spec?.target ?? "?"}${dataset ? ` on ${dataset.name} v${dataset.version}` : ""}, started by ${run.created_by}.`,
      actions,
    }),
    run.error ? h("div", { class: "callout callout-bad", role: "note" }, h("strong", {}, "The run failed: "), run.error) : null,
  );
}

/** Poll the progress route until the job ends; returns its last progress. */
async function followProgress(ctx, ws, id, box) {
  let last = null;
  while (ctx.alive()) {
    try {
      last = await api(path("workspaces", ws, "runs", id, "progress"), { signal: ctx.signal });
    } catch (err) {
      if (!ctx.alive()) return last;
      if (err.status === 404) return last; // no job: a run trained outside the server
      throw err;
    }
    if (!ctx.alive()) return last;
    renderProgress(box, last);
    if (!ACTIVE.has(last.status)) return last;
    await sleep(700, ctx.signal);
  }
  return last;
}

/** The run record once it shows the job's end (the job may finish a moment earlier). */
async function waitForRun(ctx, ws, stub, last) {
  for (let k = 0; ; k += 1) {
    let run;
    try {
      run = await api(path("workspaces", ws, "runs", stub.id), { signal: ctx.signal });
    } catch (err) {
      if (err.status !== 404) throw err;
      // the job ended without making a run record (e.g. cancelled while queued)
      run = { ...stub, status: last?.status || stub.status, error: last?.error ?? stub.error };
    }
    if (!ACTIVE.has(run.status) || k >= 20 || !ctx.alive()) return run;
    await sleep(300, ctx.signal);
  }
}

function renderProgress(box, p) {
  const total = Math.max(p.total, 0);
  const label = total ? `Trial ${Math.min(p.done, total)} of ${total}` : "Preparing";
  const bar = h("progress", { id: "run-progress", max: total || 1, value: Math.min(p.done, total || 1), "aria-describedby": "progress-text" });
  if (p.status === "succeeded" && total) bar.value = total;
  replace(
    box,
    h("h2", { id: "s-progress" }, "Progress"),
    h("div", { class: "progress-row" },
      bar,
      h("span", { id: "progress-text", class: "progress-text", "aria-live": "polite" },
        badge(p.status), ` ${label}`,
        p.message && !/^(trial \d+ of \d+|queued|succeeded|failed|cancelled|running)$/i.test(p.message) ? ` · ${p.message}` : "")),
    p.error ? h("p", { class: "bad-text" }, p.error) : null,
    p.log?.length
      ? h("pre", { class: "log", "aria-label": "Last log lines" }, p.log.slice(-12).join("\n"))
      : h("p", { class: "muted" }, "No log lines yet."),
  );
  const log = box.querySelector(".log");
  if (log) log.scrollTop = log.scrollHeight; // the newest lines in view
}

function renderFinishedProgress(ctx, ws, run, box) {
  const logBox = h("pre", { class: "log" }, "Loading…");
  const more = h("details", { class: "log-details" }, h("summary", {}, "Full log"), logBox);
  more.addEventListener("toggle", async () => {
    if (!more.open || logBox.dataset.loaded) return;
    try {
      logBox.textContent = await api(path("workspaces", ws, "runs", run.id, "log"), { as: "text", signal: ctx.signal });
      logBox.dataset.loaded = "1";
    } catch (err) {
      logBox.textContent = err.message;
    }
  }, { once: false });
  replace(
    box,
    h("h2", { id: "s-progress" }, "Progress"),
    h("div", { class: "progress-row" },
      h("progress", { id: "run-progress", max: 1, value: run.status === "succeeded" ? 1 : 0 }),
      h("span", { class: "progress-text" }, badge(run.status), ` finished ${fmtDate(run.finished_at)} after ${fmtDuration(run.started_at, run.finished_at)}`)),
    run.artifacts?.["log.txt"] ? more : null,
  );
}

async function renderResults(ctx, ws, run, body) {
  const splits = Object.keys(run.metrics || {}).filter((k) => run.metrics[k] && typeof run.metrics[k] === "object");
  const keys = [...new Set(splits.flatMap((s) => Object.keys(run.metrics[s])))];
  keys.sort((a, b) => (METRIC_ORDER.indexOf(a) + 1 || 999) - (METRIC_ORDER.indexOf(b) + 1 || 999));
  const headline = ["auc", "ks", "gini", "brier", "accuracy", "rmse"].filter((k) => testMetric(run, k) !== undefined).slice(0, 4);
  replace(body);
  if (headline.length) {
    body.append(tiles(headline.map((k) => [`${splits.includes("test") ? "Test" : "Valid"} ${k.toUpperCase()}`, fmtNum(testMetric(run, k))])));
  }
  const split = h("div", { class: "split" });
  body.append(split);
  split.append(
    section(
      "Metrics",
      table(
        [{ label: "Metric", cell: (k) => h("code", {}, k) }, ...splits.map((s) => ({ label: s, num: true, cell: (k) => fmtNum(run.metrics[s][k]) }))],
        keys,
        { caption: "Metrics by split", empty: run.status === "succeeded" ? "No metrics recorded." : "Metrics appear when the run succeeds." },
      ),
    ),
    section(
      "Details",
      details([
        ["Data", run.inputs.length ? run.inputs.map((i) => refLink(i)) : "—"],
        ["Chosen model", run.params?.candidate ?? "—"],
        ["Parameters", h("code", {}, JSON.stringify(Object.fromEntries(Object.entries(run.params || {}).filter(([k]) => k !== "candidate"))))],
        ["Candidates", (run.spec?.candidates || []).join(", ")],
        ["Trials", fmtNum(run.spec?.trials)],
        ["Seed", fmtNum(run.seed)],
        ["Created", `${fmtDate(run.created_at)} by ${run.created_by}`],
        ["Finished", fmtDate(run.finished_at)],
        ["Duration", fmtDuration(run.started_at, run.finished_at)],
        ["Run id", h("code", {}, run.id)],
      ]),
    ),
  );
  const plotsBox = section("Plots", h("p", { class: "muted" }, run.artifacts?.["report.html"] ? "Loading…" : "The run has no report."));
  const lineageBox = section("Lineage", h("p", { class: "muted" }, "Loading…"));
  body.append(plotsBox);
  const extra = h("div", { class: "stack" });
  body.append(extra, lineageBox);
  const jobs = [loadLineage(ctx, ws, run, lineageBox).catch(showError)];
  if (run.artifacts?.["report.html"]) jobs.push(loadReport(ctx, ws, run, plotsBox, extra).catch(showError));
  await Promise.all(jobs);
}

async function loadLineage(ctx, ws, run, box) {
  const ref = `leptonic://${ws}/run/${run.id}`;
  const [up, down] = await Promise.all(
    ["upstream", "downstream"].map((direction) =>
      listAll(path("workspaces", ws, "lineage"), { query: { ref, direction }, signal: ctx.signal })),
  );
  replace(box, h("h2", { id: "s-lineage" }, "Lineage"), lineageView(up, down));
}

/** The report's plots (inline PNGs) and its leaderboard and feature importance tables. */
async function loadReport(ctx, ws, run, plotsBox, extra) {
  const html = await api(path("workspaces", ws, "runs", run.id, "report"), { as: "text", signal: ctx.signal });
  if (!ctx.alive()) return;
  // The report's own stylesheet is dropped: this page's CSP forbids inline styles.
  const doc = new DOMParser().parseFromString(html.replace(/<style[\s\S]*?<\/style\s*>/gi, ""), "text/html");
  const figures = [...doc.querySelectorAll("figure")]
    .map((f) => ({ img: f.querySelector("img"), caption: f.querySelector("figcaption")?.textContent || "" }))
    .filter(({ img }) => img && /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$/.test(img.getAttribute("src") || ""));
  replace(
    plotsBox,
    h("h2", { id: "s-plots" }, "Plots"),
    figures.length
      ? h("div", { class: "plots" }, figures.map(({ img, caption }) =>
          h("figure", { class: "plot" },
            h("img", { src: img.getAttribute("src"), alt: img.getAttribute("alt") || caption, loading: "eager" }),
            h("figcaption", {}, caption))))
      : h("p", { class: "muted" }, "The report has no plots."),
  );
  for (const [id, title] of [["leaderboard", "Leaderboard"], ["feature-importance", "Feature importance"]]) {
    const t = doc.querySelector(`section#${id} table`);
    if (t) extra.append(section(title, copyTable(t, id === "feature-importance" ? 15 : 50)));
  }
}

/** A report table rebuilt from its text only (nothing of the report's markup is kept). */
function copyTable(source, maxRows) {
  const head = [...source.querySelectorAll("thead th")].map((th) => th.textContent);
  const rows = [...source.querySelectorAll("tbody tr")].slice(0, maxRows)
    .map((tr) => [...tr.children].map((td) => ({ text: td.textContent, num: td.classList.contains("num") })));
  return table(
    head.map((label, k) => ({ label, num: rows[0]?.[k]?.num, cell: (r) => r[k]?.text ?? "" })),
    rows,
    { caption: head.join(", ") },
  );
}

async function downloadReport(ws, run) {
  const html = await api(path("workspaces", ws, "runs", run.id, "report"), { as: "text" });
  const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  const a = h("a", { href: url, download: `run-${shortId(run.id)}-report.html` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
