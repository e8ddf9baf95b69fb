// The workspaces the caller can see; platform admins may create one.

import { api, listAll } from "../api.js";
import { h } from "../dom.js";
import { can, flash, navigate, onSubmit, roleIn, session } from "../shell.js";
import { badge, field, pageHeader, route, section, table, timeCell } from "../ui.js";

export async function workspacesPage(ctx) {
  const workspaces = await listAll("/workspaces", { signal: ctx.signal });
  const rows = table(
    [
      { label: "Workspace", cell: (w) => h("a", { href: route("w", w.name, "datasets"), class: "strong" }, w.name) },
      { label: "Description", cell: (w) => w.description || h("span", { class: "muted" }, "—") },
      { label: "Your role", cell: (w) => (roleIn(w.name) ? badge(roleIn(w.name)) : "—") },
      { label: "Created", cell: (w) => timeCell(w.created_at) },
      {
        label: "Open",
        cell: (w) =>
          h("span", { class: "links" },
            h("a", { href: route("w", w.name, "datasets") }, "Datasets"),
            h("a", { href: route("w", w.name, "runs") }, "Runs"),
            h("a", { href: route("w", w.name, "models") }, "Models"),
            can(w.name, "admin") ? h("a", { href: route("w", w.name, "audit") }, "Audit") : null),
      },
    ],
    workspaces,
    {
      caption: "Workspaces",
      empty: session.me?.user.is_admin
        ? "No workspaces yet: create the first one below."
        : "You are not a member of any workspace yet; ask a workspace admin to add you.",
    },
  );
  ctx.root.append(
    pageHeader({ title: "Workspaces", subtitle: "One workspace per business line: its data, runs and models." }),
    section("All workspaces", rows),
  );
  if (session.me?.user.is_admin) ctx.root.append(createForm());
}

function createForm() {
  const form = h(
    "form",
    { class: "form inline-form" },
    field("Name (a–z, 0–9, - and _)", h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9_\\-]{0,62}", placeholder: "credit-risk" })),
    field("Description", h("input", { name: "description", placeholder: "Credit risk team" })),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button primary" }, "Create workspace")),
  );
  onSubmit(form, async (data) => {
    const name = String(data.get("name")).trim();
    await api("/workspaces", { method: "POST", body: { name, description: String(data.get("description") || "") } });
    flash(`Workspace ${name} created.`);
    navigate(route("w", name, "datasets"));
  });
  return section("New workspace", form);
}
