// Chinese by default, English on request; one table, keys used by data-i18n attributes.
const TEXT = {
  zh: {
    layer: "图层", level: "层级", locate: "定位", savePng: "保存图片", print: "打印", signOut: "退出",
    signInTitle: "登录网格地图", username: "用户名", password: "密码", signIn: "登录",
    searchHint: "坐标 118.58,24.91 · 地址 · 网格编码",
    clickHint: "点击地图或输入坐标/地址,查询所属的各级网格与警务区(同格)。",
    locating: "正在定位…", status: "状态", unit: "单元", code: "编码", responsible: "责任人",
    ok: "已定位", outside: "不在任何网格内", ambiguous: "位于边界", unmatched: "地址未匹配",
    outside_jurisdiction: "不在您的管辖范围内", restricted: "无权查看",
    ancestors: "上级", children: "下级", kind: "类型", validFrom: "生效", households: "户数",
    address: "地址", matched: "匹配地址", none: "无",
    edit: "编辑边界", editTitle: "编辑边界", operation: "操作", selected: "已选单元", receiving: "接收单元",
    parts: "份数", force: "允许切割房屋(标记为被切割)", draw: "画线/画面", preview: "预览", reason: "原因", save: "保存", reset: "重来",
    drawHint: "在地图上绘制,双击结束。", previewing: "正在预览…", previewReady: "预览如下,确认后保存。",
    saving: "正在保存…", saved: "已保存变更集", reverted: "已撤回变更集",
    stale: "有人已修改这些单元(412):请重新加载后再编辑。", created: "新增", changed: "变更", retired: "撤销",
    moves: "迁移", buildingsUnit: "栋房屋", householdsUnit: "户", sameGrid: "同格问题",
    viewTree: "层级目录", viewSameGrid: "同格校核", viewWorkload: "负载着色", back: "返回",
    searchUnits: "单元", searchAddress: "地址", noResults: "没有结果", searching: "正在搜索…",
    buildings: "房屋", persons: "人口", workload: "负载", target: "目标", under: "偏少", over: "偏多", within: "适中",
    noTarget: "无目标", staff: "人员", overlaps: "同格单元(其他图层)", share: "面积占比", history: "变更记录",
    revert: "撤回", revertConfirm: "撤回变更集 #{id}?将以新变更集恢复原边界。", alreadyReverted: "该变更集已撤回(409)。",
    refused: "被拒绝(422)", noHistory: "无变更记录", loading: "加载中…",
    check: "校核", layerA: "图层 A(须嵌套)", layerB: "图层 B", aligned: "已同格,无问题。",
    violations: "违规", noise: "边界误差(非违规)", proposal: "调整方案", apply: "应用方案", applyFrom: "生效日期",
    applyConfirm: "将方案应用为图层 B 的新版本({n} 个网格调整)?", applied: "已应用方案",
    proposalStale: "数据已变化,方案不同(412):请重新校核。", moveTo: "划入", households_short: "户",
    legendTitle: "户数(网格目标)", noneVisible: "您的管辖范围内没有单元",
    synthetic: "示例数据 · 非真实布局",
    routes: "巡查路线", noRoutes: "无巡查路线", replan: "需重新规划",
    previewLines: "预览的新边界",
    staleEdit: "保存被拒(412):预览之后有人修改了这些单元({codes})。请点击“预览”查看最新边界,确认后再保存。",
  },
  en: {
    layer: "Layer", level: "Level", locate: "Locate", savePng: "Save PNG", print: "Print", signOut: "Sign out",
    signInTitle: "Sign in to the grid map", username: "User name", password: "Password", signIn: "Sign in",
    searchHint: "lon,lat · address · unit code",
    clickHint: "Click the map, or type coordinates or an address, to find its units in every layer (same grid).",
    locating: "Locating…", status: "Status", unit: "Unit", code: "Code", responsible: "Responsible",
    ok: "located", outside: "in no unit", ambiguous: "on a boundary", unmatched: "address not matched",
    outside_jurisdiction: "outside your jurisdiction", restricted: "not yours",
    ancestors: "Above", children: "Below", kind: "Kind", validFrom: "Valid from", households: "Households",
    address: "Address", matched: "Matched address", none: "none",
    edit: "Edit boundaries", editTitle: "Edit boundaries", operation: "Operation", selected: "Selected", receiving: "Receiving unit",
    parts: "Parts", force: "Allow cutting buildings (flagged as cut)", draw: "Draw", preview: "Preview", reason: "Reason", save: "Save", reset: "Start over",
    drawHint: "Draw on the map; double-click to finish.", previewing: "Previewing…", previewReady: "Preview below: save to apply.",
    saving: "Saving…", saved: "Saved change set", reverted: "Reverted change set",
    stale: "Someone changed these units meanwhile (412): reload, then edit again.", created: "Created", changed: "Changed", retired: "Retired",
    moves: "Moves", buildingsUnit: "buildings", householdsUnit: "households", sameGrid: "Same-grid problems",
    viewTree: "Hierarchy", viewSameGrid: "Same grid", viewWorkload: "Workload colours", back: "Back",
    searchUnits: "Units", searchAddress: "Address", noResults: "No results", searching: "Searching…",
    buildings: "Buildings", persons: "Persons", workload: "Workload", target: "Target", under: "under", over: "over", within: "within",
    noTarget: "no target", staff: "Staff", overlaps: "Other layers covering it", share: "Area share", history: "History",
    revert: "Revert", revertConfirm: "Revert change set #{id}? The earlier boundaries come back as a new change set.", alreadyReverted: "Reverted already (409).",
    refused: "Refused (422)", noHistory: "No change sets", loading: "Loading…",
    check: "Check", layerA: "Layer A (must nest)", layerB: "Layer B", aligned: "Aligned: no problems.",
    violations: "Violations", noise: "Boundary noise (not violations)", proposal: "Proposal", apply: "Apply proposal", applyFrom: "Valid from",
    applyConfirm: "Apply the proposal as a new version of layer B ({n} grids move)?", applied: "Proposal applied",
    proposalStale: "The data changed and so did the proposal (412): check again.", moveTo: "to", households_short: "hh",
    legendTitle: "Households (grid target)", noneVisible: "No units in your jurisdiction",
    synthetic: "Synthetic sample data",
    routes: "Patrol routes", noRoutes: "No patrol routes", replan: "re-plan",
    previewLines: "The preview's new boundaries",
    staleEdit: "Not saved (412): someone changed these units after your preview ({codes}). Preview again to see the current boundaries, then save.",
  },
};

let current = "zh";

export const language = () => current;

export function t(key, values = {}) {
  const text = TEXT[current][key] ?? TEXT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

const listeners = [];

/** Call `redraw` after every language switch (open panels draw themselves again). */
export function onLanguage(redraw) {
  listeners.push(redraw);
}

export function setLanguage(lang) {
  const changed = (lang in TEXT ? lang : "zh") !== current;
  current = lang in TEXT ? lang : "zh";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  translatePage();
  if (changed) for (const redraw of listeners) redraw(current);
}

export function translatePage() {
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of document.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  const toggle = document.getElementById("lang");
  if (toggle) toggle.textContent = current === "zh" ? "English" : "中文";
}
