// Shared widgets and formatting: tables, badges, stat tiles, pagers, links to objects.

import { h } from "./dom.js";

// -- formatting -------------------------------------------------------------------------
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d);
}

/** A <time> element for a table cell (kept on one line). */
export function timeCell(iso) {
  return iso ? h("time", { datetime: iso, class: "nowrap" }, fmtDate(iso)) : "—";
}

export function fmtNum(value, digits = 4) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString();
  return Number(value.toFixed(digits)).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtPct(rate, digits = 1) {
  if (rate === null || rate === undefined) return "—";
  return `${(rate * 100).toFixed(digits)}%`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(start, end) {
  if (!start || !end) return "—";
  const s = (new Date(end) - new Date(start)) / 1000;
  if (!(s >= 0)) return "—";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const shortId = (id) => String(id || "").slice(0, 8);

// -- links ------------------------------------------------------------------------------
/** A hash route from path segments: route("w", ws, "runs") -> "#/w/ws/runs". */
export function route(...segments) {
  return "#/" + segments.map((s) => encodeURIComponent(String(s))).join("/");
}

/** Parse "leptonic://ws/kind/name[/version]". */
export function parseRef(ref) {
  const m = /^leptonic:\/\/([^/]+)\/([^/]+)\/([^/]+)(?:\/(\d+))?$/.exec(String(ref));
  if (!m) return null;
  return { workspace: m[1], kind: m[2], name: m[3], version: m[4] ? Number(m[4]) : null };
}

const REF_ROUTES = { dataset: "datasets", run: "runs", model: "models" };

/** A link to the page of a leptonic:// object (plain text when it has none). */
export function refLink(ref) {
  const r = parseRef(ref);
  if (!r) return h("code", {}, String(ref));
  const label =
    r.kind === "run"
      ? `run ${shortId(r.name)}`
      : `${r.kind} ${r.name}${r.version ? ` v${r.version}` : ""}`;
  const section = REF_ROUTES[r.kind];
  if (!section) return h("span", { class: "ref", title: ref }, label);
  const parts = ["w", r.workspace, section, r.name];
  if (r.version && r.kind !== "run") parts.push(r.version);
  return h("a", { class: "ref", href: route(...parts), title: ref }, label);
}

// -- badges -----------------------------------------------------------------------------
const TONES = {
  queued: "neutral", running: "info", succeeded: "ok", failed: "bad", cancelled: "warn",
  candidate: "neutral", staging: "warn", production: "ok", archived: "muted",
  error: "bad", warning: "warn", info: "info",
  viewer: "neutral", developer: "info", admin: "accent",
  id: "muted", target: "accent", timestamp: "info", numeric: "neutral", categorical: "neutral",
  text: "neutral", pii: "bad", ignore: "muted",
};

export function badge(text, tone = TONES[text] || "neutral", title = null) {
  return h("span", { class: `badge badge-${tone}`, title }, text);
}

export function piiBadge(kind) {
  return h("span", { class: "badge badge-pii", title: `personal data: ${kind}` }, `PII · ${kind}`);
}

// -- layout -----------------------------------------------------------------------------
/** A page heading with an optional kicker line above and actions on the right. */
export function pageHeader({ kicker = null, title, subtitle = null, actions = [] }) {
  return h(
    "div",
    { class: "page-header" },
    h(
      "div",
      { class: "page-title" },
      kicker ? h("p", { class: "kicker" }, kicker) : null,
      h("h1", {}, title),
      subtitle ? h("p", { class: "subtitle" }, subtitle) : null,
    ),
    actions.length ? h("div", { class: "actions" }, actions) : null,
  );
}

/** A titled card section. */
export function section(title, ...children) {
  const id = `s-${String(title).toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h(
    "section",
    { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    ...children,
  );
}

/** Key figures as tiles: tiles([["Rows", "1,500"], ...]). */
export function tiles(items) {
  return h(
    "dl",
    { class: "tiles" },
    items.map(([label, value]) =>
      h("div", { class: "tile" }, h("dt", {}, label), h("dd", {}, value)),
    ),
  );
}

/** A definition list of details. */
export function details(items) {
  return h(
    "dl",
    { class: "details" },
    items.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]),
  );
}

/**
 * A table: table([{label, cell: row => node|string, num: bool, key}], rows, {caption, empty}).
 * Wrapped in a horizontally scrolling container for narrow screens.
 */
export function table(columns, rows, { caption = null, empty = "Nothing here yet.", rowClass } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            { class: rowClass ? rowClass(row) : null },
            columns.map((c) => h("td", { class: c.num ? "num" : null }, c.cell(row))),
          ),
        ),
      ),
    ),
  );
}

/** "Showing 1–25" with Previous / Next links for a page {limit, offset, next_offset, items}. */
export function pager(page, hrefFor) {
  const first = page.items.length ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  const prev = page.offset > 0 ? Math.max(0, page.offset - page.limit) : null;
  const more = page.next_offset !== null && page.next_offset !== undefined;
  if (prev === null && !more) {
    return h("p", { class: "pager muted" }, page.items.length ? `${page.items.length} in all` : "");
  }
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("span", { class: "muted" }, page.items.length ? `Showing ${first}–${last}` : "No entries"),
    h(
      "span",
      { class: "pager-links" },
      prev !== null
        ? h("a", { class: "button secondary", href: hrefFor(prev), rel: "prev" }, "← Previous")
        : h("span", { class: "button secondary", "aria-disabled": "true" }, "← Previous"),
      page.next_offset !== null && page.next_offset !== undefined
        ? h("a", { class: "button secondary", href: hrefFor(page.next_offset), rel: "next" }, "Next →")
        : h("span", { class: "button secondary", "aria-disabled": "true" }, "Next →"),
    ),
  );
}

/** A labelled form control: field("Target", input) -> <div><label for>..</label>input</div>. */
let fieldCounter = 0;
export function field(label, control, hint = null) {
  fieldCounter += 1;
  const id = control.id || `field-${fieldCounter}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

/** A horizontal bar for a rate in [0, 1] (width set through the CSSOM, allowed by the CSP). */
export function rateBar(rate, tone = "info") {
  const fill = h("span", { class: `bar-fill bar-${tone}` });
  fill.style.width = `${Math.max(0, Math.min(1, rate || 0)) * 100}%`;
  return h("span", { class: "bar", "aria-hidden": "true" }, fill);
}
