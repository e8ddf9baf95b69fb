// What every page shares: the signed-in user and their roles, the message banner,
// navigation helpers.

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";

/** The signed-in user: {user, memberships} from GET /api/v1/me (null when signed out). */
export const session = { me: null };

const RANK = { viewer: 1, developer: 2, admin: 3 };

/** The caller's role in a workspace ("admin" for platform admins), or null. */
export function roleIn(ws) {
  if (!session.me) return null;
  if (session.me.user.is_admin) return "admin";
  const m = session.me.memberships.find((x) => x.workspace === ws);
  return m ? m.role : null;
}

/** Whether the caller's role in ``ws`` reaches ``role``. */
export function can(ws, role) {
  const mine = roleIn(ws);
  return Boolean(mine) && RANK[mine] >= RANK[role];
}

/** Whether the caller may see raw personal data in ``ws``. */
export function rawPii(ws) {
  if (!session.me) return false;
  if (session.me.user.is_admin) return true;
  return Boolean(session.me.memberships.find((x) => x.workspace === ws && x.raw_pii));
}

// -- the banner ---------------------------------------------------------------------------
function banner() {
  return {
    box: document.getElementById("banner"),
    text: document.getElementById("banner-text"),
  };
}

/** Show an error (an ApiError's message, with the field it names) in the banner. */
export function showError(err) {
  if (err && err.name === "AbortError") return;
  const { box, text } = banner();
  let message = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError) {
    const where = err.field ? ` (field: ${err.field})` : "";
    message = `${message}${where}`;
  } else if (!(err instanceof ApiError) && err instanceof Error) {
    console.error(err);
  }
  box.className = "banner banner-error";
  replace(text, h("strong", {}, "Error: "), message);
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

/** Show a confirmation in the banner. */
export function showNotice(message) {
  const { box, text } = banner();
  box.className = "banner banner-ok";
  replace(text, message);
  box.hidden = false;
}

let flashed = null;

/** Show ``message`` in the banner of the next page (after a navigation). */
export function flash(message) {
  flashed = message;
}

/** Show the flashed message, if any (called once a page starts rendering). */
export function showFlash() {
  if (flashed) showNotice(flashed);
  flashed = null;
}

export function clearBanner() {
  banner().box.hidden = true;
}

/** Go to a hash route (re-rendering when it is the current one). */
export function navigate(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = hash;
}

/** A promise resolved after ``ms``, or at once when ``signal`` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Run ``action`` for a form submit: disable the button, show errors in the banner. */
export function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      clearBanner();
      await action(new FormData(form));
    } catch (err) {
      showError(err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}
