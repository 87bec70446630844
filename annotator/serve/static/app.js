// The QA page: a filtered, paged grid of thumbnails, histograms with brushes (hist.js) and a sample
// view. The URL's query string holds the view (filters, ranges, sort, page, overlay, open sample), so
// that a link opens it and back / forward walk through it. Plain JS, no build step.
"use strict";
const FILTERS = ["class", "split", "attack_type", "segmenter", "prior_worst_region", "worst_region", "dataset", "status", "protocol", "group", "flag"];
const ALWAYS = ["class", "status", "protocol", "group", "flag"];  // offered whatever columns the store has
const state = { info: null, page: 1, pages: 1, rows: [], current: -1, open: null, detail: null, ranges: {},
  overlaysOn: true, saved: {} };
const $ = (id) => document.getElementById(id);

async function getJSON(url, options) {
  const r = await fetch(url, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text ?? value; select.appendChild(o);
}

function shownFilters() { return FILTERS.filter((f) => ALWAYS.includes(f) || f in state.info.choices); }

// ------------------------------------------------------------ the URL

function filterParams() {  // what the grid and the histograms share: the filters and the ranges
  const q = new URLSearchParams();
  for (const f of shownFilters()) { const v = $("filter-" + f).value; if (v) q.set(f, v); }
  for (const [column, spec] of Object.entries(state.ranges)) q.append("range", `${column}:${spec}`);
  return q;
}

function viewParams() {
  const q = filterParams();
  if ($("sort").value !== "row") q.set("sort", $("sort").value);
  if ($("order").value !== "asc") q.set("order", $("order").value);
  if (state.page > 1) q.set("page", state.page);
  if ($("overlay").value !== "none") q.set("overlay", $("overlay").value);
  if (state.open !== null) q.set("sample", state.open);
  return q;
}

function saveURL(replace) {
  const q = viewParams().toString(), url = location.pathname + (q ? "?" + q : "");
  if (url !== location.pathname + location.search) history[replace ? "replaceState" : "pushState"](null, "", url);
}

function choose(select, value) {  // a value from a link that the store no longer offers still shows (the server says why)
  if (value && ![...select.options].some((o) => o.value === value)) option(select, value);
  select.value = value;
}

function readURL() {  // the controls from the URL; returns the sample it opens, or null
  const q = new URLSearchParams(location.search);
  for (const f of shownFilters()) choose($("filter-" + f), q.get(f) || "");
  state.ranges = {};
  for (const r of q.getAll("range")) { const i = r.indexOf(":"); if (i > 0) state.ranges[r.slice(0, i)] = r.slice(i + 1); }
  choose($("sort"), q.get("sort") || "row"); choose($("order"), q.get("order") || "asc");
  choose($("overlay"), q.get("overlay") || "none");
  state.page = Math.max(1, parseInt(q.get("page"), 10) || 1);
  const sample = q.get("sample");
  return sample !== null && /^\d+$/.test(sample) ? Number(sample) : null;
}

async function show(sample) {  // the view the controls describe, then the sample (or the grid)
  renderRanges();
  const hists = loadHistograms();
  await loadPage();
  if (sample === null) closeView(); else await openRow(sample);
  await hists;
}

function changed(histograms = true) {  // a filter, range or sort changed: back to page 1, a new history entry
  state.page = 1; state.open = null; saveURL();
  renderRanges();
  if (histograms) loadHistograms();
  loadPage();
}

function setRange(column, spec) {
  if (spec) state.ranges[column] = spec; else delete state.ranges[column];
  changed();
}

// ------------------------------------------------------------ the grid

function tile(r) {
  const div = document.createElement("div"), failed = Boolean(r.status);
  div.className = "thumb" + (r.attack_type !== "bonafide" ? " attack" : "") + (r.flag !== "none" ? " flag-" + r.flag : "") +
    (failed ? " failed" : "");
  div.dataset.row = r.row;
  const thumb = `/thumb/${r.row}.png?overlay=${$("overlay").value}`;
  div.innerHTML = `<img alt=""><div class="id"></div>`;
  const img = div.querySelector("img");
  if (failed) {  // its crop is black: the source frame, decoded by the server, or the black crop if that cannot be
    img.onerror = () => { img.onerror = null; img.src = thumb; div.classList.add("no-source"); };
    img.src = `/source/${r.row}.jpg`;
    const status = document.createElement("div"); status.className = "status";
    status.textContent = `${r.status_name}: ${r.error || "no error text"}`; status.title = status.textContent;
    div.appendChild(status);
  } else img.src = thumb;
  div.querySelector(".id").textContent = `${r.row} ${r.attack_type} ${r.sample_id}`;
  div.onclick = () => openRow(r.row, "push");
  return div;
}

async function loadPage() {
  try {
    const q = filterParams(); q.set("page", state.page); q.set("per_page", 48); q.set("sort", $("sort").value); q.set("order", $("order").value);
    const data = await getJSON("/api/rows?" + q);
    state.rows = data.rows; state.pages = data.pages;
    if (data.committed !== state.info.committed) { await reloadInfo(); loadHistograms(true); }  // a run committed shards since
    $("page-label").textContent = `page ${data.page} of ${data.pages} (${data.total} samples)`;
    const grid = $("grid"); grid.innerHTML = "";
    data.rows.forEach((r) => grid.appendChild(tile(r)));
  } catch (e) { $("page-label").textContent = "error: " + e.message; state.rows = []; $("grid").innerHTML = ""; }
}

// ------------------------------------------------------------ the sample view

function fillMeta(data) {
  $("meta").innerHTML = "";
  for (const [k, v] of Object.entries({ ...data.meta, ...prefix("protocol ", data.protocols), ...prefix("qa ", data.qa) })) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>"; tr.children[0].textContent = k; tr.children[1].textContent = String(v);
    $("meta").appendChild(tr);
  }
}

async function showSource(row) {  // a failed row: the frame the run could not label, or why there is none
  const r = await fetch(`/source/${row}.jpg?side=512`);
  if (state.open !== row) return;
  if (r.ok) { $("layer-image").src = URL.createObjectURL(await r.blob()); return; }
  const body = await r.json().catch(() => ({}));
  $("view-error").textContent += ` (no source frame: ${body.error || r.statusText})`;
}

async function openRow(row, how) {  // how: "push" / "replace" a history entry; none when the URL asked for it
  state.open = row; state.current = state.rows.findIndex((r) => r.row === row);
  if (how) saveURL(how === "replace");
  let data;
  try { data = await getJSON(`/api/rows/${row}`); } catch (e) {
    $("view").hidden = false; $("view-title").textContent = `row ${row}: ${e.message}`; $("view-error").textContent = ""; return;
  }
  if (state.open !== row) return;  // another sample was asked for meanwhile
  state.detail = data;
  $("view").hidden = false;
  const failed = Boolean(data.meta.status);
  $("view-title").textContent = `row ${row}: ${data.meta.sample_id} (${data.meta.attack_type})`;
  $("view-error").textContent = failed ? `${data.status_name}: ${data.meta.error || ""}` : "";
  $("layer-image").classList.toggle("source", failed);
  $("layer-image").src = `/layer/${row}/image.png`;
  if (failed) showSource(row);
  showCompare(row);
  for (const name of state.info.layers.slice(1)) $("layer-" + name).src = `/layer/${row}/${name}.png`;
  $("pyramid").innerHTML = state.info.pyramid.map((p) => `<img src="/layer/${row}/pyramid-${p}.png" title="pyramid ${p}">`).join("");
  const svg = $("landmarks"); svg.innerHTML = "";
  if (data.landmarks) {
    const side = state.info.crop || 256;
    svg.setAttribute("viewBox", `0 0 ${side} ${side}`);
    svg.innerHTML = data.landmarks.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="0.8" fill="#0ff"/>`).join("");
  }
  svg.style.display = $("show-landmarks").checked ? "" : "none";
  fillMeta(data);
  $("prev").disabled = state.current <= 0; $("next").disabled = state.current < 0 || state.current >= state.rows.length - 1;
  $("note").value = data.qa.note || "";
  $("flag-status").textContent = data.qa.flag !== "none" ? `flagged ${data.qa.flag} ${data.qa.time}` : "";
}

function closeView(how) {
  const wasOpen = !$("view").hidden;
  $("view").hidden = true; state.open = null;
  if (how) saveURL();
  if (wasOpen && how) loadPage();  // flags set in the view show in the grid
}

function prefix(p, obj) { return Object.fromEntries(Object.entries(obj || {}).map(([k, v]) => [p + k, v])); }

function step(d) {
  const k = state.current + d;
  if (state.current >= 0 && k >= 0 && k < state.rows.length) openRow(state.rows[k].row, "replace");
}

function toggleOverlays() {
  state.overlaysOn = !state.overlaysOn;
  for (const name of state.info.layers.slice(1)) {
    const slider = $("opacity-" + name);
    if (state.overlaysOn) slider.value = state.saved[name] ?? slider.value;
    else { state.saved[name] = slider.value; slider.value = 0; }
    slider.dispatchEvent(new Event("input"));
  }
}

async function flag(kind) {
  if (!state.info.allow_flags) { $("flag-status").textContent = "read-only: restart with --allow-flags"; return; }
  // the sample id the page listed (or showed) for the row: the server refuses the flag if the row now holds another sample
  const listed = state.rows[state.current], row = state.open;
  const sample_id = listed ? listed.sample_id : state.detail.meta.sample_id;
  try {
    const r = await getJSON(`/api/rows/${row}/flag`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ flag: kind, note: $("note").value, sample_id }) });
    if (listed) listed.flag = kind;
    await openRow(row);  // the meta table shows the new qa values
    $("flag-status").textContent = kind === "none" ? "cleared" : `flagged ${kind} ${r.qa.time}`;
  } catch (e) { $("flag-status").textContent = "error: " + e.message; }
}

// ------------------------------------------------------------ start

function summary(info) {
  const rows = info.committed === info.n ? `${info.n} samples` : `${info.committed} of ${info.n} samples committed (a run is writing the store)`;
  $("summary").textContent = rows + (info.allow_flags ? ", flags on" : ", read-only");
}

function filterValues(info, f) {
  return f === "group" ? info.choices.groups : f === "protocol" ? info.choices.protocols :
    f === "flag" ? info.choices.flags : (info.choices[f] || []).filter((v) => v !== "");  // "": no value (an audit lacks the row)
}

async function reloadInfo() {  // new shards may bring new filter values: keep each choice made
  const info = state.info = await getJSON("/api/info");
  summary(info);
  for (const f of shownFilters()) {
    const s = $("filter-" + f), chosen = s.value;
    s.innerHTML = ""; option(s, "", "all"); filterValues(info, f).forEach((v) => option(s, v));
    choose(s, chosen);
  }
}

function swatch(box, colour, text) {
  const item = document.createElement("span"); item.className = "item";
  const sw = document.createElement("i"); sw.className = "sw"; sw.style.background = `rgb(${colour.join(",")})`;
  item.append(sw, text); box.appendChild(item);
}

function drawLegend(box) {  // colours from the server (render.py, face/regions.py): the page keeps no copy
  const { channels, regions, depth } = state.info.legend;
  box.innerHTML = "<b>label</b> ";
  channels.forEach((c) => swatch(box, c.colour, c.name));
  box.append(" ", Object.assign(document.createElement("b"), { textContent: "regions" }), " ");
  regions.filter((r) => r.id > 0).forEach((r) => swatch(box, r.colour, `${r.id} ${r.name}`));
  const ramp = document.createElement("span"); ramp.className = "item";
  ramp.innerHTML = '<b>depth</b> far <i class="ramp"></i> near';
  ramp.querySelector(".ramp").style.background = `linear-gradient(to right, ${depth.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
  box.appendChild(ramp);
}

function buildControls(info) {
  for (const f of shownFilters()) {
    const label = document.createElement("label"); label.textContent = f + " ";
    const s = document.createElement("select"); s.id = "filter-" + f; option(s, "", "all");
    filterValues(info, f).forEach((v) => option(s, v)); s.onchange = () => changed();
    label.appendChild(s); $("filters").appendChild(label);
  }
  info.choices.sort.forEach((c) => option($("sort"), c));
  info.overlays.forEach((o) => option($("overlay"), o));
  $("sort").onchange = $("order").onchange = () => changed(false);
  $("overlay").onchange = () => { saveURL(true); loadPage(); };
  const stack = $("stack"), sliders = $("sliders"), colours = Object.fromEntries(info.legend.channels.map((c) => [c.name, c.colour]));
  for (const name of info.layers.slice(1)) {
    const img = document.createElement("img"); img.id = "layer-" + name; img.alt = name;
    img.style.opacity = name === "attack" || name === "live" ? 0.5 : 0;
    stack.insertBefore(img, $("landmarks"));
    const label = document.createElement("label");
    if (colours[name]) swatch(label, colours[name], "");
    label.append(name + " ");
    const slider = document.createElement("input"); slider.type = "range"; slider.min = 0; slider.max = 100;
    slider.id = "opacity-" + name; slider.value = Math.round(img.style.opacity * 100);
    slider.oninput = () => { for (const el of [img, $("b-layer-" + name)]) if (el) el.style.opacity = slider.value / 100; };
    label.appendChild(slider); sliders.appendChild(label);
  }
}

function bindKeys() {
  $("show-landmarks").onchange = () => { $("landmarks").style.display = $("show-landmarks").checked ? "" : "none"; };
  $("prev-page").onclick = () => { if (state.page > 1) { state.page--; saveURL(); loadPage(); } };
  $("next-page").onclick = () => { if (state.page < state.pages) { state.page++; saveURL(); loadPage(); } };
  $("back").onclick = () => closeView("push");
  $("prev").onclick = () => step(-1); $("next").onclick = () => step(1);
  $("flag-bad").onclick = () => flag("bad"); $("flag-good").onclick = () => flag("good"); $("flag-none").onclick = () => flag("none");
  document.addEventListener("keydown", (e) => {
    if ($("view").hidden || e.target.tagName === "INPUT" && e.target.type !== "range" && e.target.type !== "checkbox") return;
    const keys = { ArrowRight: () => step(1), ArrowLeft: () => step(-1), o: toggleOverlays, b: () => flag("bad"), g: () => flag("good"),
      l: () => { $("show-landmarks").click(); }, Escape: () => $("back").click() };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  window.onpopstate = () => show(readURL());
}

async function start() {
  const info = state.info = await getJSON("/api/info");
  $("store").textContent = info.store;
  summary(info);
  buildControls(info);
  buildCompare(info);
  drawLegend($("legend")); drawLegend($("view-legend"));
  buildHistograms();
  bindKeys();
  await show(readURL());
}

start();
