// The QA page: a filtered, paged grid of thumbnails and a sample view. Plain JS, no build step.
"use strict";
const FILTERS = ["class", "split", "attack_type", "segmenter", "dataset", "status", "protocol", "group", "flag"];
const state = { info: null, page: 1, pages: 1, rows: [], current: -1, overlaysOn: true, saved: {} };
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

function query() {
  const q = new URLSearchParams({ page: state.page, per_page: 48, sort: $("sort").value, order: $("order").value });
  for (const f of FILTERS) { const v = $("filter-" + f).value; if (v) q.set(f, v); }
  return q;
}

async function loadPage() {
  try {
    const data = await getJSON("/api/rows?" + query());
    state.rows = data.rows; state.pages = data.pages;
    if (data.committed !== state.info.committed) await reloadInfo();  // a run committed shards since
    $("page-label").textContent = `page ${data.page} of ${data.pages} (${data.total} samples)`;
    const grid = $("grid"); grid.innerHTML = "";
    data.rows.forEach((r, k) => {
      const div = document.createElement("div");
      div.className = "thumb" + (r.attack_type !== "bonafide" ? " attack" : "") + (r.flag !== "none" ? " flag-" + r.flag : "");
      div.dataset.row = r.row;
      div.innerHTML = `<img src="/thumb/${r.row}.png?overlay=${$("overlay").value}" alt=""><div class="id"></div>`;
      div.querySelector(".id").textContent = `${r.row} ${r.attack_type} ${r.sample_id}`;
      div.onclick = () => openSample(k);
      grid.appendChild(div);
    });
  } catch (e) { $("page-label").textContent = "error: " + e.message; }
}

async function openSample(k) {
  state.current = k;
  const row = state.rows[k].row;
  const data = await getJSON(`/api/rows/${row}`);
  $("view").hidden = false;
  $("view-title").textContent = `row ${row}: ${data.meta.sample_id} (${data.meta.attack_type})`;
  $("layer-image").src = `/layer/${row}/image.png`;
  for (const name of state.info.layers.slice(1)) $("layer-" + name).src = `/layer/${row}/${name}.png`;
  $("pyramid").innerHTML = state.info.pyramid.map((p) => `<img src="/layer/${row}/pyramid-${p}.png" title="pyramid ${p}">`).join("");
  const svg = $("landmarks"); svg.innerHTML = "";
  if (data.landmarks) {
    const side = state.info.crop || 256;
    svg.setAttribute("viewBox", `0 0 ${side} ${side}`);
    svg.innerHTML = data.landmarks.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="0.8" fill="#0ff"/>`).join("");
  }
  svg.style.display = $("show-landmarks").checked ? "" : "none";
  $("meta").innerHTML = "";
  for (const [k2, v] of Object.entries({ ...data.meta, ...prefix("protocol ", data.protocols), ...prefix("qa ", data.qa) })) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>"; tr.children[0].textContent = k2; tr.children[1].textContent = String(v);
    $("meta").appendChild(tr);
  }
  $("note").value = data.qa.note || "";
  $("flag-status").textContent = data.qa.flag !== "none" ? `flagged ${data.qa.flag} ${data.qa.time}` : "";
}

function prefix(p, obj) { return Object.fromEntries(Object.entries(obj || {}).map(([k, v]) => [p + k, v])); }

function step(d) {
  const k = state.current + d;
  if (k >= 0 && k < state.rows.length) openSample(k);
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
  // the sample id the page listed with the row: the server refuses the flag if the row now holds another sample
  const { row, sample_id } = state.rows[state.current];
  try {
    const r = await getJSON(`/api/rows/${row}/flag`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ flag: kind, note: $("note").value, sample_id }) });
    state.rows[state.current].flag = kind;
    await openSample(state.current);  // the meta table shows the new qa values
    $("flag-status").textContent = kind === "none" ? "cleared" : `flagged ${kind} ${r.qa.time}`;
  } catch (e) { $("flag-status").textContent = "error: " + e.message; }
}

function summary(info) {
  const rows = info.committed === info.n ? `${info.n} samples` : `${info.committed} of ${info.n} samples committed (a run is writing the store)`;
  $("summary").textContent = rows + (info.allow_flags ? ", flags on" : ", read-only");
}

function filterValues(info, f) {
  return f === "group" ? info.choices.groups : f === "protocol" ? info.choices.protocols :
    f === "flag" ? info.choices.flags : info.choices[f] || [];
}

async function reloadInfo() {  // new shards may bring new filter values: keep each choice made
  const info = state.info = await getJSON("/api/info");
  summary(info);
  for (const f of FILTERS) {
    const s = $("filter-" + f), chosen = s.value;
    s.innerHTML = ""; option(s, "", "all"); filterValues(info, f).forEach((v) => option(s, v));
    if (chosen && !filterValues(info, f).includes(chosen)) option(s, chosen);
    s.value = chosen;
  }
}

async function start() {
  const info = state.info = await getJSON("/api/info");
  $("store").textContent = info.store;
  summary(info);
  const filters = $("filters");
  for (const f of FILTERS) {
    const label = document.createElement("label"); label.textContent = f + " ";
    const s = document.createElement("select"); s.id = "filter-" + f; option(s, "", "all");
    filterValues(info, f).forEach((v) => option(s, v)); s.onchange = () => { state.page = 1; loadPage(); };
    label.appendChild(s); filters.appendChild(label);
  }
  info.choices.sort.forEach((c) => option($("sort"), c));
  info.overlays.forEach((o) => option($("overlay"), o));
  for (const id of ["sort", "order", "overlay"]) $(id).onchange = () => { state.page = 1; loadPage(); };
  const stack = $("stack"), sliders = $("sliders");
  for (const name of info.layers.slice(1)) {
    const img = document.createElement("img"); img.id = "layer-" + name; img.alt = name;
    img.style.opacity = name === "attack" || name === "live" ? 0.5 : 0;
    stack.insertBefore(img, $("landmarks"));
    const label = document.createElement("label"); label.textContent = name + " ";
    const slider = document.createElement("input"); slider.type = "range"; slider.min = 0; slider.max = 100;
    slider.id = "opacity-" + name; slider.value = Math.round(img.style.opacity * 100);
    slider.oninput = () => { img.style.opacity = slider.value / 100; };
    label.appendChild(slider); sliders.appendChild(label);
  }
  $("show-landmarks").onchange = () => { $("landmarks").style.display = $("show-landmarks").checked ? "" : "none"; };
  $("prev-page").onclick = () => { if (state.page > 1) { state.page--; loadPage(); } };
  $("next-page").onclick = () => { if (state.page < state.pages) { state.page++; loadPage(); } };
  $("back").onclick = () => { $("view").hidden = true; loadPage(); };
  $("prev").onclick = () => step(-1); $("next").onclick = () => step(1);
  $("flag-bad").onclick = () => flag("bad"); $("flag-good").onclick = () => flag("good"); $("flag-none").onclick = () => flag("none");
  document.addEventListener("keydown", (e) => {
    if ($("view").hidden || e.target.tagName === "INPUT" && e.target.type !== "range" && e.target.type !== "checkbox") return;
    const keys = { ArrowRight: () => step(1), ArrowLeft: () => step(-1), o: toggleOverlays, b: () => flag("bad"), g: () => flag("good"),
      l: () => { $("show-landmarks").click(); }, Escape: () => $("back").click() };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  loadPage();
}

start();
