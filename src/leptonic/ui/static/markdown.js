// A small Markdown renderer for model cards: headings, paragraphs, lists (nested by
// indentation), pipe tables, fenced and indented code, block quotes, rules, and inline
// code, bold, italics and links. It builds DOM nodes; text is never parsed as HTML,
// so anything in a card is shown literally.

import { h } from "./dom.js";

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
// Links to the web, mail, this page or this site. "//host" and "/\host" leave the site
// (browsers read a backslash in a URL as a slash), so a backslash anywhere is refused.
const SAFE_URL = /^(?!.*\\)(https?:\/\/|mailto:|#|\/(?![\/\\]))/i;

/** Render Markdown text as a DocumentFragment. */
export function renderMarkdown(text) {
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").replace(/\t/g, "    ").split("\n");
  const frag = document.createDocumentFragment();
  renderBlocks(lines, frag);
  return frag;
}

function isBlank(line) {
  return /^\s*$/.test(line);
}

function startsBlock(lines, i) {
  const line = lines[i];
  return (
    FENCE.test(line) || HEADING.test(line) || RULE.test(line) || LIST_ITEM.test(line) ||
    QUOTE.test(line) || isTableStart(lines, i)
  );
}

function isTableStart(lines, i) {
  return lines[i].includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) &&
    lines[i + 1].includes("-");
}

function renderBlocks(lines, parent) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let m = FENCE.exec(line);
    if (m) {
      const fence = m[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i += 1; // the closing fence (or the end)
      const code = h("code", { class: m[2] ? `language-${m[2]}` : null }, body.join("\n"));
      parent.append(h("pre", {}, code));
      continue;
    }
    if (/^ {4}/.test(line)) {
      const body = [];
      while (i < lines.length && (/^ {4}/.test(lines[i]) || isBlank(lines[i]))) {
        body.push(lines[i++].slice(4));
      }
      while (body.length && isBlank(body[body.length - 1])) body.pop();
      parent.append(h("pre", {}, h("code", {}, body.join("\n"))));
      continue;
    }
    m = HEADING.exec(line);
    if (m) {
      parent.append(h(`h${m[1].length}`, {}, inline(m[2])));
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(h("hr"));
      i += 1;
      continue;
    }
    if (isTableStart(lines, i)) {
      i = renderTable(lines, i, parent);
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(QUOTE.exec(lines[i++])[1]);
      const quote = h("blockquote");
      renderBlocks(body, quote);
      parent.append(quote);
      continue;
    }
    if (LIST_ITEM.test(line)) {
      i = renderList(lines, i, parent);
      continue;
    }
    const para = [];
    while (i < lines.length && !isBlank(lines[i]) && (para.length === 0 || !startsBlock(lines, i))) {
      para.push(lines[i++].trim());
    }
    parent.append(h("p", {}, inline(para.join(" "))));
  }
}

function renderList(lines, start, parent) {
  const first = LIST_ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = ordered ? h("ol") : h("ul");
  if (ordered && parseInt(first[2], 10) !== 1) list.setAttribute("start", parseInt(first[2], 10));
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const body = [m[3]];
    i += 1;
    // continuation lines and nested lists: anything indented deeper than the marker
    while (i < lines.length) {
      const next = lines[i];
      if (isBlank(next)) {
        const after = lines[i + 1];
        if (after !== undefined && !isBlank(after) && leading(after) > indent) {
          body.push("");
          i += 1;
          continue;
        }
        break;
      }
      if (leading(next) <= indent) break;
      body.push(next.slice(Math.min(leading(next), indent + 2)));
      i += 1;
    }
    const item = h("li");
    if (body.length === 1) item.append(inline(body[0]));
    else {
      const rest = body.slice(1);
      const nestedAt = rest.findIndex((l) => LIST_ITEM.test(l) || isBlank(l));
      const textLines = nestedAt === -1 ? rest : rest.slice(0, nestedAt);
      item.append(inline([body[0], ...textLines.map((l) => l.trim())].join(" ")));
      if (nestedAt !== -1) renderBlocks(rest.slice(nestedAt), item);
    }
    list.append(item);
    while (i < lines.length && isBlank(lines[i]) && LIST_ITEM.test(lines[i + 1] || "") &&
      leading(lines[i + 1]) === indent) i += 1;
  }
  parent.append(list);
  return i;
}

function leading(line) {
  return line.length - line.trimStart().length;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith("|")) s = s.slice(1);
  if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
  const cells = [];
  let cur = "";
  for (let k = 0; k < s.length; k += 1) {
    if (s[k] === "\\" && s[k + 1] === "|") {
      cur += "|";
      k += 1;
    } else if (s[k] === "|") {
      cells.push(cur.trim());
      cur = "";
    } else cur += s[k];
  }
  cells.push(cur.trim());
  return cells;
}

function renderTable(lines, start, parent) {
  const head = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((c) => {
    const left = c.startsWith(":");
    const right = c.endsWith(":");
    return right && left ? "center" : right ? "right" : left ? "left" : null;
  });
  let i = start + 2;
  const rows = [];
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes("|")) rows.push(splitRow(lines[i++]));
  const cell = (tag, text, k) => {
    const el = h(tag, tag === "th" ? { scope: "col" } : {}, inline(text ?? ""));
    if (aligns[k]) el.classList.add(`align-${aligns[k]}`);
    return el;
  };
  parent.append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, head.map((c, k) => cell("th", c, k)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, head.map((_, k) => cell("td", r[k], k))))),
      ),
    ),
  );
  return i;
}

const INLINE = new RegExp(
  [
    "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)", // 1,2: code span
    "!?\\[([^\\]]*)\\]\\(\\s*([^)\\s]*)(?:\\s+\"[^\"]*\")?\\s*\\)", // 3,4: link or image (as a link)
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*", // 5: strong
    "__(?=\\S)([\\s\\S]*?\\S)__", // 6: strong
    "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*", // 7: emphasis
    "(?<![\\w])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![\\w])", // 8: emphasis
    "\\\\([\\\\`*_{}\\[\\]()#+\\-.!|>])", // 9: escaped character
  ].join("|"),
);

/** Inline Markdown as a DocumentFragment. */
export function inline(text) {
  const frag = document.createDocumentFragment();
  let rest = String(text);
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      frag.append(rest);
      break;
    }
    if (m.index > 0) frag.append(rest.slice(0, m.index));
    if (m[1] !== undefined) frag.append(h("code", {}, m[2].replace(/^ (.*) $/, "$1")));
    else if (m[3] !== undefined) {
      const url = m[4];
      if (SAFE_URL.test(url)) {
        const external = /^https?:/i.test(url);
        frag.append(
          h(
            "a",
            { href: url, rel: external ? "noopener noreferrer" : null, target: external ? "_blank" : null },
            inline(m[3] || url),
          ),
        );
      } else frag.append(inline(m[3] || url));
    } else if (m[5] !== undefined || m[6] !== undefined) frag.append(h("strong", {}, inline(m[5] ?? m[6])));
    else if (m[7] !== undefined || m[8] !== undefined) frag.append(h("em", {}, inline(m[7] ?? m[8])));
    else if (m[9] !== undefined) frag.append(m[9]);
    rest = rest.slice(m.index + m[0].length);
  }
  return frag;
}
