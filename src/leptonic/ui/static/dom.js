// Building DOM nodes without HTML strings: every text goes through text nodes,
// so whatever the server (or a model card) says is shown, never interpreted.

const BOOLEAN_ATTRS = new Set([
  "checked", "disabled", "hidden", "multiple", "readonly", "required", "selected", "open",
]);

/**
 * Create an element: h("a", {href: "#/x", class: "link"}, "text", child, [more]).
 * Attributes: "class", "text" (textContent), "on<event>" handlers, "dataset" (object),
 * booleans for BOOLEAN_ATTRS; null / undefined / false values are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in el) el.value = String(value);
    else if (BOOLEAN_ATTRS.has(key)) el.toggleAttribute(key, Boolean(value));
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null and false are skipped). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all of an element's children. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A fresh id for label / control pairs. */
let counter = 0;
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}
