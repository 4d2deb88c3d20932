// A unit's panel: counts and workload against the target, staff, the units of
// the other layers covering it (同格), its relatives, and its change sets with
// revert for those who may edit. Each part asks the server for what the
// caller's role may read; the server cuts every answer to the jurisdiction.
import { api } from "./api.js";
import { el, unitLink } from "./panel.js";
import { t } from "./i18n.js";
import { standing, workloadOf, forgetWorkload } from "./workload.js";
import { routeList } from "./patrol.js";

const may = (me, permission) => me.permissions.includes(permission);

function table(rows) {
  return el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

function section(id, title) {
  const body = el("div", { class: "hint" }, t("loading"));
  return { node: el("section", { "data-section": id }, el("h2", {}, title), body), body };
}

async function fill(body, load) {
  try {
    const content = await load();
    body.className = "";
    body.replaceChildren(...[content].flat().filter(Boolean));
  } catch (error) {
    body.className = "error";
    body.replaceChildren(error.message);
  }
}

function counts(row, target) {
  const where = standing(row.households, target);
  const range = target ? `${target.min ?? "…"}–${target.max ?? "…"}` : t("noTarget");
  return table([
    [t("households"), el("span", { class: `load-${where}`, "data-load": where, "data-households": String(row.households) },
      String(row.households), target ? ` (${t(where)})` : "")],
    [t("target"), range],
    [t("persons"), String(row.persons)],
    [t("buildings"), String(row.buildings)],
  ]);
}

function staffList(members) {
  if (!members.length) return el("p", { class: "hint" }, t("none"));
  return el("ul", { class: "staff" }, ...members.map((m) =>
    el("li", { "data-role": m.role }, `${m.role_title}: ${m.name}`, m.phone ? ` · ${m.phone}` : "")));
}

function overlapTable(answer, layers, onUnit) {
  if (!answer.overlaps.length) return el("p", { class: "hint" }, t("none"));
  const levelTitle = (layer, level) =>
    layers.find((l) => l.name === layer)?.levels.find((l) => l.name === level)?.title ?? level;
  return el("table", { class: "overlaps" }, ...answer.overlaps.map((o) =>
    el("tr", { "data-layer": o.layer, "data-code": o.code, "data-share": String(o.share) },
      el("th", {}, levelTitle(o.layer, o.level)),
      el("td", {}, unitLink(o.code, o.name, o.layer, onUnit)),
      el("td", { class: "share", title: t("share") }, `${(o.share * 100).toFixed(1)}%`))));
}

function historyList(page, { layer, me, onChanged, status }) {
  if (!page.changesets.length) return el("p", { class: "hint" }, t("noHistory"));
  const items = page.changesets.map((c) => {
    const when = new Date(c.valid_from).toLocaleString();
    const item = el("li", { "data-changeset": String(c.id) },
      el("strong", {}, `#${c.id} ${c.op}`), ` · ${when} · ${c.author}`,
      c.reverts ? ` · ${t("revert")} #${c.reverts}` : "", c.reason ? el("div", { class: "hint" }, c.reason) : null);
    if (may(me, "boundaries:edit")) {
      const button = el("button", { type: "button", class: "revert", "data-revert": String(c.id) }, t("revert"));
      button.addEventListener("click", () => revert(c.id, { layer, status, onChanged }));
      item.append(" ", button);
    }
    return item;
  });
  return el("ul", { class: "history" }, ...items);
}

async function revert(id, { layer, status, onChanged }) {
  if (!window.confirm(t("revertConfirm", { id }))) return;
  status.className = "hint";
  status.textContent = t("saving");
  try {
    const answer = await api(`/api/v1/layers/${encodeURIComponent(layer)}/changesets/${id}/revert`, { method: "POST" });
    status.className = "ok";
    status.dataset.kind = "ok";
    status.textContent = `${t("reverted")} #${id} → #${answer.changeset}`;
    forgetWorkload();
    onChanged(answer);
  } catch (error) {
    status.className = "error";
    status.dataset.kind = `error-${error.status}`;
    if (error.status === 412) status.textContent = t("stale");
    else if (error.status === 409) status.textContent = t("alreadyReverted");
    else if (error.status === 422 && error.problem?.problems) {
      status.textContent = `${t("refused")}: ${error.problem.problems.map((p) => `${p.rule}: ${p.message}`).join("; ")}`;
    } else status.textContent = error.message;
  }
}

/**
 * Draw `unit` (GET /api/v1/units/{code}) into `panel`, then fill each part as it arrives.
 * `routes` (for roles with `patrol`) loads the unit's stored patrol routes (and draws them).
 * @param {{me: object, layers: object[], onUnit: Function, onChanged: Function, routes?: Function}} context
 */
export function renderUnitPanel(panel, unit, { me, layers, onUnit, onChanged, routes }) {
  const p = unit.properties;
  const layer = layers.find((l) => l.name === p.layer);
  const level = layer?.levels.find((l) => l.name === p.level);
  const parts = [
    el("h2", { "data-unit": p.code }, p.name ?? p.code),
    table([
      [t("code"), el("span", { class: "code" }, p.code)],
      [t("layer"), layer?.title ?? p.layer], [t("level"), level?.title ?? p.level], [t("kind"), p.kind],
      [t("validFrom"), new Date(p.valid_from).toLocaleString()],
    ]),
  ];
  const jobs = [];
  if (may(me, "workload:read")) {
    const part = section("workload", t("workload"));
    parts.push(part.node);
    jobs.push(fill(part.body, async () => {
      const { rows, target } = await workloadOf(p.layer, p.level);
      const row = rows.get(p.code);
      return row ? counts(row, target) : el("p", { class: "hint" }, t("none"));
    }));
  }
  if (may(me, "staff:read")) {
    const part = section("staff", t("staff"));
    parts.push(part.node);
    const query = new URLSearchParams({ layer: p.layer, unit: p.code });
    jobs.push(fill(part.body, async () => staffList(await api(`/api/v1/staff?${query}`))));
  }
  if (routes && may(me, "patrol")) {
    // Routes 巡查路线 of the unit, each downloadable for a phone (patrol.js).
    const part = section("routes", t("routes"));
    part.node.id = "patrol";
    parts.push(part.node);
    jobs.push(fill(part.body, async () => routeList(await routes())));
  }
  const overlaps = section("overlaps", t("overlaps"));
  parts.push(overlaps.node);
  jobs.push(fill(overlaps.body, async () => overlapTable(
    await api(`/api/v1/units/${encodeURIComponent(p.code)}/overlaps?layer=${encodeURIComponent(p.layer)}`),
    layers, onUnit)));
  if (unit.ancestors?.length) {
    parts.push(el("section", { "data-section": "ancestors" }, el("h2", {}, t("ancestors")), el("ul", {},
      ...unit.ancestors.map((a) => el("li", {}, unitLink(a.code, a.name, p.layer, onUnit))))));
  }
  if (unit.children?.length) {
    parts.push(el("section", { "data-section": "children" },
      el("h2", {}, `${t("children")} (${unit.children.length})`), el("ul", {},
        ...unit.children.map((c) => el("li", {}, unitLink(c.code, c.name, p.layer, onUnit))))));
  }
  const history = section("history", t("history"));
  const status = el("p", { id: "history-status", role: "status" });
  history.node.append(status);
  parts.push(history.node);
  const query = new URLSearchParams({ unit: p.code, limit: "20" });
  jobs.push(fill(history.body, async () => historyList(
    await api(`/api/v1/layers/${encodeURIComponent(p.layer)}/changesets?${query}`),
    { layer: p.layer, me, onChanged, status })));
  panel.replaceChildren(...parts);
  return Promise.all(jobs).then(() => { panel.dataset.loaded = p.code; });
}
