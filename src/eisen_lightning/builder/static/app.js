// eisen builder page: palette, canvas with wiring rules, forms, validation, save, import, runs.
const $ = (sel) => document.querySelector(sel);
const token = new URLSearchParams(location.hash.slice(1)).get("token") || sessionStorage.getItem("token") || "";
sessionStorage.setItem("token", token);
let palette = null;
let state = { nodes: {}, metrics: {}, run: {} };
let selected = null;
let errors = [];
let currentRun = null;

async function api(method, path, body) {
  const init = { method, headers: { "X-Builder-Token": token } };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  if (path.endsWith("/events")) return response;
  return { status: response.status, data: await response.json() };
}
const status = (text) => { $("#status").textContent = text; };
const groupOf = (name) => palette.groups.find((g) => g.name === name);
const component = (id) => { const [g, o] = id.split("/"); return groupOf(g)?.components.find((c) => c.option === o); };
const metricOf = (id) => palette.metrics.find((m) => m.id === id);
const nodeKey = (c) => (groupOf(c.group).multiple ? `${c.group}:${c.option}` : c.group);
const taskNode = () => state.nodes.task && component(`task/${state.nodes.task.option}`);

// ---- rules enforced while editing -------------------------------------------------------------
function fits(group, comp, task) {
  if (!task || !task.kind || !palette.task_fits[task.kind]) return null;
  const tag = comp.tags[group === "loss" ? "input" : "output"];
  const allowed = palette.task_fits[task.kind][group];
  return tag && !allowed.includes(tag) ? `${group} ${comp.option} is for ${tag}, the task is ${task.kind} (needs ${allowed.join(" or ")})` : null;
}
function transformFits(comp, task) {
  const allowed = task && task.kind && palette.transform_fits[task.kind];
  const kind = comp.tags.augments;
  return allowed && kind && !allowed.includes(kind) ? `transform ${comp.option} is a ${kind} augmentation, the task is ${task.kind} (its label is not an image; needs ${allowed.join(" or ")})` : null;
}
const transformNodes = () => Object.entries(state.nodes).filter(([, n]) => n.group === "transforms");
function refuse(comp) {
  const group = groupOf(comp.group);
  const key = nodeKey(comp);
  if (state.nodes[key]) return group.multiple ? `${comp.option} is already there` : `only one ${comp.group}: remove ${state.nodes[key].option} first`;
  if (comp.group === "loss" || comp.group === "net") return fits(comp.group, comp, taskNode());
  if (comp.group === "transforms") return transformFits(comp, taskNode());
  if (comp.group === "task") {
    for (const g of ["loss", "net"]) {
      const other = state.nodes[g] && component(`${g}/${state.nodes[g].option}`);
      const problem = other && fits(g, other, comp);
      if (problem) return problem;
    }
    for (const [, n] of transformNodes()) {
      const problem = transformFits(component(`transforms/${n.option}`), comp);
      if (problem) return problem;
    }
  }
  return null;
}
function addComponent(id) {
  const comp = component(id);
  const problem = refuse(comp);
  if (problem) { status(`not added: ${problem}`); return false; }
  const key = nodeKey(comp);
  state.nodes[key] = { group: comp.group, option: comp.option, params: {} };
  if (comp.group === "task") for (const m of comp.metrics || []) state.metrics[m] = { id: m, params: {} };
  status(`added ${id}`);
  select(key);
  return true;
}
function addMetric(id) {
  const metric = metricOf(id);
  if (!state.nodes.task) { status("not added: drop a task first, metrics belong to it"); return false; }
  if (Object.values(state.metrics).some((m) => metricOf(m.id).key === metric.key)) { status(`not added: the task already has a metric ${metric.key}`); return false; }
  state.metrics[id] = { id, params: {} };
  status(`added metric ${metric.key}`);
  select(`metric:${id}`);
  return true;
}
// transforms run in the order of the list: move one to position `to` (0 = first)
function moveTransform(key, to, focus) {
  const list = transformNodes();
  const from = list.findIndex(([k]) => k === key);
  if (from < 0 || to < 0 || to >= list.length || to === from) return;
  const [item] = list.splice(from, 1);
  list.splice(to, 0, item);
  const others = Object.entries(state.nodes).filter(([, n]) => n.group !== "transforms");
  state.nodes = Object.fromEntries([...others, ...list]);
  render();
  status(`${item[1].option} moved to position ${to + 1} of ${list.length}`);
  if (focus) (document.querySelector(`.node[data-key="${key}"] button.${focus}:not([disabled])`) || document.querySelector(`.node[data-key="${key}"]`)).focus();
}
function remove(key) {
  if (key.startsWith("metric:")) delete state.metrics[key.slice(7)];
  else {
    if (key === "task") state.metrics = {};
    delete state.nodes[key];
  }
  if (selected === key) selected = null;
  render();
}

// ---- palette --------------------------------------------------------------------------------
function paletteItem(id, label, title, add) {
  const item = document.createElement("div");
  item.className = "item"; item.draggable = true; item.tabIndex = 0; item.dataset.id = id; item.title = title;
  item.innerHTML = `<span></span><button aria-label="add ${label}">+</button>`;
  item.querySelector("span").textContent = label;
  item.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", id));
  item.querySelector("button").addEventListener("click", () => { add(); render(); });
  item.addEventListener("keydown", (e) => { if (e.key === "Enter") { add(); render(); } });
  return item;
}
function renderPalette() {
  const box = $("#groups");
  box.innerHTML = "";
  const needle = $("#search").value.toLowerCase();
  const section = (title, name, items) => {
    const details = document.createElement("details");
    details.className = "group"; details.dataset.group = name; details.open = true;
    details.innerHTML = "<summary></summary>";
    details.querySelector("summary").textContent = title;
    items.filter((i) => i.dataset.id.toLowerCase().includes(needle)).forEach((i) => details.appendChild(i));
    if (details.children.length > 1) box.appendChild(details);
  };
  for (const g of palette.groups) {
    section(g.title, g.name, g.components.map((c) => paletteItem(c.id, c.option, c.doc || c.target || "", () => addComponent(c.id))));
    if (g.name === "task") section("Metrics", "metrics", palette.metrics.map((m) => paletteItem(`metric/${m.id}`, m.id, m.target, () => addMetric(m.id))));
  }
}

// ---- canvas ---------------------------------------------------------------------------------
function nodeElement(key, label, removable = true) {
  const el = document.createElement("div");
  el.className = "node"; el.dataset.key = key; el.tabIndex = 0;
  if (key === selected) el.classList.add("selected");
  if (errors.some((e) => errorKey(e) === key)) el.classList.add("invalid");
  el.innerHTML = `<span></span>${removable ? '<button class="remove" title="remove">✕</button>' : ""}`;
  el.querySelector("span").textContent = label;
  el.addEventListener("click", (e) => { if (e.target.classList.contains("remove")) remove(key); else select(key); });
  return el;
}
function slot(name, title, required) {
  const el = document.createElement("div");
  el.className = "slot"; el.dataset.group = name;
  if (required) el.classList.add("required");
  el.innerHTML = "<h4></h4>";
  el.querySelector("h4").textContent = title;
  return el;
}
function render() {
  const pipeline = $("#pipeline"), settings = $("#settings");
  pipeline.innerHTML = ""; settings.innerHTML = "";
  const order = ["data", "transforms", "net", "loss", "task"];
  order.forEach((name, i) => {
    const g = groupOf(name);
    if (!g) return;
    if (i) pipeline.insertAdjacentHTML("beforeend", '<span class="arrow">→</span>');
    const el = slot(name, g.title, g.required);
    fillSlot(el, g);
    if (name === "data") el.insertAdjacentHTML("beforeend", '<p class="note">each data set builds its own MONAI chain (loading, spacing, normalisation, crops) from its fields</p>');
    if (name === "transforms") el.insertAdjacentHTML("beforeend", '<p class="note">run in this order after the data set\'s own training transforms, training split only; drag within the list or use ↑ ↓ (Alt+Arrow keys) to reorder</p>');
    if (name === "task") {
      el.insertAdjacentHTML("beforeend", "<h4>metrics</h4>");
      const own = (taskNode() && taskNode().metrics) || [];
      for (const m of Object.values(state.metrics)) el.appendChild(nodeElement(`metric:${m.id}`, metricOf(m.id).key, !own.includes(m.id)));
    }
    pipeline.appendChild(el);
  });
  for (const g of palette.groups.filter((g) => !order.includes(g.name))) {
    const el = slot(g.name, g.title, g.required);
    fillSlot(el, g);
    settings.appendChild(el);
  }
  const run = slot("run", "Run settings", false);
  run.appendChild(nodeElement("run", "seed, task name, metric...", false));
  settings.appendChild(run);
  renderInspector();
  renderErrors();
}
function fillSlot(el, g) {
  const nodes = Object.entries(state.nodes).filter(([, n]) => n.group === g.name);
  if (!nodes.length) { el.classList.add("empty"); el.insertAdjacentHTML("beforeend", `<p class="note">${g.required ? "required: " : ""}drop a ${g.name} here</p>`); }
  if (g.name === "transforms") {
    const list = document.createElement("ol");
    list.className = "ordered"; list.setAttribute("aria-label", "training augmentations, in order");
    nodes.forEach(([key, n], i) => { const li = document.createElement("li"); li.appendChild(orderedNode(key, n, i, nodes.length)); list.appendChild(li); });
    el.appendChild(list);
    return;
  }
  for (const [key, n] of nodes) el.appendChild(nodeElement(key, n.option));
}
function orderedNode(key, n, index, count) {
  const el = nodeElement(key, n.option);
  const kind = component(`transforms/${n.option}`).tags.augments;
  if (kind) el.querySelector("span").insertAdjacentHTML("beforeend", ` <small class="note">${kind}</small>`);
  for (const [dir, delta, arrow] of [["up", -1, "↑"], ["down", 1, "↓"]]) {
    const button = document.createElement("button");
    button.className = dir; button.textContent = arrow; button.title = `move ${dir}`;
    button.setAttribute("aria-label", `move ${n.option} ${dir}`);
    button.disabled = index + delta < 0 || index + delta >= count;
    button.addEventListener("click", (e) => { e.stopPropagation(); moveTransform(key, index + delta, dir); });
    el.insertBefore(button, el.querySelector(".remove"));
  }
  el.draggable = true;
  el.addEventListener("keydown", (e) => {
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) { e.preventDefault(); moveTransform(key, index + (e.key === "ArrowUp" ? -1 : 1)); document.querySelector(`.node[data-key="${key}"]`)?.focus(); }
  });
  el.addEventListener("dragstart", (e) => { e.stopPropagation(); e.dataTransfer.setData("text/plain", `node:${key}`); });
  el.addEventListener("dragover", (e) => e.preventDefault());
  el.addEventListener("drop", (e) => {
    const moved = e.dataTransfer.getData("text/plain");
    if (!moved.startsWith("node:transforms:")) return;  // palette drops go to the canvas
    e.preventDefault(); e.stopPropagation();
    moveTransform(moved.slice(5), index);
  });
  return el;
}

// ---- inspector (forms from the signatures) ----------------------------------------------------
function selectedFields() {
  if (!selected) return null;
  if (selected === "run") return { fields: palette.run.fields, params: state.run, title: "run settings" };
  if (selected.startsWith("metric:")) { const m = state.metrics[selected.slice(7)]; return m && { fields: metricOf(m.id).fields, params: m.params, title: `metric ${metricOf(m.id).key}`, doc: metricOf(m.id).target }; }
  const n = state.nodes[selected];
  if (!n) return null;
  const comp = component(`${n.group}/${n.option}`);
  return { fields: comp.fields, params: n.params, title: `${n.group}: ${n.option}`, doc: comp.doc || comp.target };
}
function select(key) { selected = key; render(); }
function shown(value) { return value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value); }
function parse(field, text) {
  if (text === "" && field.nullable) return null;
  if (field.kind === "int" || field.kind === "float") return text.trim() !== "" && !isNaN(Number(text)) ? Number(text) : text;
  if (field.kind === "list" || field.kind === "json") { try { return JSON.parse(text); } catch { return text; } }
  return text;
}
function input(field, value, set) {
  let el;
  if (field.kind === "enum") {
    el = document.createElement("select");
    const options = field.nullable ? [null, ...field.options] : field.options;
    for (const o of options) { const opt = document.createElement("option"); opt.value = JSON.stringify(o); opt.textContent = o === null ? "(none)" : String(o); el.appendChild(opt); }
    el.value = JSON.stringify(value);
    el.addEventListener("change", () => set(JSON.parse(el.value)));
  } else if (field.kind === "bool") {
    el = document.createElement("input"); el.type = "checkbox"; el.checked = value === true;
    el.addEventListener("change", () => set(el.checked));
  } else {
    el = document.createElement("input");
    el.type = (field.kind === "int" || field.kind === "float") && typeof value === "number" ? "number" : "text";
    if (el.type === "number") el.step = "any";
    el.value = shown(value);
    el.addEventListener("input", () => set(parse(field, el.value)));
  }
  el.name = field.name; el.dataset.field = field.name;
  return el;
}
function renderInspector() {
  const box = $("#inspector");
  const info = selectedFields();
  if (!info) { box.innerHTML = '<p class="hint">Select a component to edit its parameters.</p>'; return; }
  box.innerHTML = "<h3></h3><p class='doc'></p><div class='fields'></div><details><summary>more parameters</summary><div class='more'></div></details>";
  box.querySelector("h3").textContent = info.title;
  box.querySelector(".doc").textContent = info.doc || "";
  for (const field of info.fields) {
    const value = field.name in info.params ? info.params[field.name] : field.default;
    const label = document.createElement("label");
    label.innerHTML = "<span></span> <span class='doc'></span>";
    label.querySelector("span").textContent = field.name + (field.linked ? " (linked)" : "");
    label.querySelector(".doc").textContent = field.doc || "";
    label.appendChild(input(field, value, (v) => { info.params[field.name] = v; status(`${field.name} set`); }));
    const problem = errors.find((e) => errorKey(e) === selected && e.field === field.name);
    if (problem) {
      const note = document.createElement("div");
      note.className = "field-error"; note.dataset.for = field.name; note.textContent = problem.msg;
      label.appendChild(note);
    }
    box.querySelector(field.more ? ".more" : ".fields").appendChild(label);
  }
}

// ---- validation, save, import ----------------------------------------------------------------
function errorKey(e) {
  if (e.node.startsWith("metric:")) {
    const key = e.node.slice(7);
    const m = Object.values(state.metrics).find((x) => x.id === key || metricOf(x.id).key === key);
    return m ? `metric:${m.id}` : e.node;
  }
  if (state.nodes[e.node] || !groupOf(e.node)?.multiple) return e.node;
  const hit = Object.entries(state.nodes).find(([, n]) => n.group === e.node && (n.option === e.field || component(`${n.group}/${n.option}`).fields.some((f) => f.name === e.field)));
  return hit ? hit[0] : e.node;
}
function renderErrors() {
  const list = $("#errors");
  list.innerHTML = "";
  for (const e of errors) {
    const li = document.createElement("li");
    li.textContent = `${e.node}${e.field ? " › " + e.field : ""}: ${e.msg}`;
    li.addEventListener("click", () => select(errorKey(e)));
    list.appendChild(li);
  }
}
function spec() {
  return {
    name: $("#name").value.trim(),
    nodes: Object.values(state.nodes),
    metrics: Object.values(state.metrics),
    run: state.run,
  };
}
async function check(path) {
  status(path.endsWith("save") ? "saving..." : "validating...");
  const { status: code, data } = await api("POST", path, spec());
  errors = data.ok ? [] : data.errors;
  if (data.ok) { $("#yaml").textContent = data.yaml; $("#command").textContent = data.command; }
  status(data.ok ? (data.path ? `saved ${data.path}` : "valid") : `${errors.length} error(s) (HTTP ${code})`);
  if (!data.ok && errors.length) selected = errorKey(errors[0]);
  render();
  if (data.path) await loadExperiments();
  return data.ok;
}
function fresh() {
  state = { nodes: {}, metrics: {}, run: {} };
  for (const g of palette.groups) if (!["data", "net", "loss", "task"].includes(g.name)) for (const o of g.default) state.nodes[nodeKey({ group: g.name, option: o })] = { group: g.name, option: o, params: {} };
  errors = []; selected = null;
  render();
}
async function loadExperiments() {
  const { data } = await api("GET", "/api/experiments");
  const sel = $("#import-select");
  const chosen = sel.value;  // a refresh (after a save) must not change what the user picked meanwhile
  sel.innerHTML = "";
  for (const e of data.experiments) { const o = document.createElement("option"); o.value = e.name; o.textContent = e.name + (e.saved ? " (saved)" : ""); o.dataset.saved = e.saved; sel.appendChild(o); }
  if (chosen && data.experiments.some((e) => e.name === chosen)) sel.value = chosen;
}
async function importExperiment() {
  const sel = $("#import-select");
  const { status: code, data } = await api("GET", `/api/experiments/${encodeURIComponent(sel.value)}`);
  if (code !== 200) { errors = data.errors; render(); status("import failed"); return; }
  state = { nodes: {}, metrics: {}, run: data.run };
  for (const n of data.nodes) state.nodes[nodeKey(n)] = n;
  for (const m of data.metrics) state.metrics[m.id] = m;
  $("#name").value = sel.selectedOptions[0].dataset.saved === "true" ? data.name : `${data.name}_copy`;
  errors = []; selected = null;
  status(`imported ${data.name}`);
  render();
}

// ---- runs -------------------------------------------------------------------------------------
async function startRun(dryRun) {
  if (!(await check("/api/save"))) return;
  const { status: code, data } = await api("POST", "/api/runs", { name: $("#name").value.trim(), dry_run: dryRun });
  if (code !== 200) { errors = data.errors; render(); status("run refused"); return; }
  currentRun = data.id;
  $("#log").textContent = ""; $("#metrics").innerHTML = "";
  $("#run-state").textContent = `running ${dryRun ? "(dry run) " : ""}in ${data.run_dir}`;
  $("#stop").disabled = false;
  const response = await api("GET", `/api/runs/${data.id}/events`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n"); buffer = lines.pop();
    for (const line of lines) if (line.trim()) onEvent(JSON.parse(line));
  }
  $("#stop").disabled = true;
}
function showMetrics(metrics) {
  const table = $("#metrics");
  table.innerHTML = "";
  for (const [k, v] of Object.entries(metrics)) { const tr = table.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v === null ? "n/a" : Number(v).toFixed(4); }
}
function onEvent(event) {
  if (event.type === "log") { const log = $("#log"); log.textContent += event.line + "\n"; log.scrollTop = log.scrollHeight; }
  if (event.type === "progress") { $("#run-state").textContent = `${event.event}: epoch ${event.epoch}, step ${event.step}`; showMetrics(event.metrics); }
  if (event.type === "end") {
    const how = event.stopped ? "stopped" : event.returncode === 0 ? "finished" : "failed";
    $("#run-state").textContent = `${how} (exit ${event.returncode})`;
    if (Object.keys(event.metrics).length) showMetrics(event.metrics);
    status(`run ${currentRun} ended`);
  }
}

// ---- start --------------------------------------------------------------------------------------
async function start() {
  const { status: code, data } = await api("GET", "/api/palette");
  if (code !== 200) { status(data.errors[0].msg); return; }
  palette = data;
  renderPalette();
  fresh();
  await loadExperiments();
  const canvas = $("#canvas");
  canvas.addEventListener("dragover", (e) => e.preventDefault());
  canvas.addEventListener("drop", (e) => {
    e.preventDefault();
    const id = e.dataTransfer.getData("text/plain");
    if (id.startsWith("metric/")) addMetric(id.slice(7)); else if (component(id)) addComponent(id);
    render();
  });
  $("#search").addEventListener("input", renderPalette);
  $("#new").addEventListener("click", fresh);
  $("#import").addEventListener("click", importExperiment);
  $("#validate").addEventListener("click", () => check("/api/validate"));
  $("#save").addEventListener("click", () => check("/api/save"));
  $("#run").addEventListener("click", () => startRun(false));
  $("#dry-run").addEventListener("click", () => startRun(true));
  $("#stop").addEventListener("click", () => currentRun && api("DELETE", `/api/runs/${currentRun}`));
  status(`ready: ${palette.groups.length} groups; experiments are saved in ${palette.config_dir}/experiment`);
  document.body.dataset.ready = "true";
}
start();
