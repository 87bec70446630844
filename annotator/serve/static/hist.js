// The histograms of the page: one per numeric column over the rows the other filters keep (the route
// leaves a column's own range out, so that its brush can widen), each a canvas with a brush: drag over
// it to set that column's range filter (snapped to the bins), click a bar for that bin alone, click
// "NaN" for the rows without a value. The range chips above the grid show and clear the ranges.
// app.js owns the state, the URL and the grid; this file only reads state.ranges and calls setRange.
"use strict";
const HIST = { bins: 40, width: 220, height: 48, generation: 0, data: {}, filters: null };

function fmt(x) { return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(4))); }

function parseRange(spec) {  // [lo, hi] of "lo..hi" (open ends infinite), "nan" as null
  if (!spec || spec === "nan") return null;
  const [lo, hi] = spec.split("..");
  return [lo === "" ? -Infinity : Number(lo), hi === "" ? Infinity : Number(hi)];
}

function rangeText(column, spec) {
  if (spec === "nan") return `${column} is NaN`;
  const [lo, hi] = spec.split("..");
  if (lo && hi) return lo === hi ? `${column} = ${lo}` : `${lo} ≤ ${column} ≤ ${hi}`;
  return lo ? `${column} ≥ ${lo}` : hi ? `${column} ≤ ${hi}` : `${column} has a value`;
}

function histColumns() {  // the continuous columns (the quality signals among them) first, then the integer ones
  const all = state.info.choices.numeric;
  return [...all.filter((c) => !c.integer), ...all.filter((c) => c.integer)];
}

function renderRanges() {
  const box = $("ranges"); box.innerHTML = "";
  for (const [column, spec] of Object.entries(state.ranges)) {
    const chip = document.createElement("span"); chip.className = "chip"; chip.dataset.column = column;
    chip.textContent = `${rangeText(column, spec)} `;
    const clear = document.createElement("button"); clear.textContent = "×"; clear.title = "clear this range";
    clear.onclick = () => setRange(column, null);
    chip.appendChild(clear); box.appendChild(chip);
  }
}

function buildHistograms() {
  const box = $("hists");
  for (const { name } of histColumns()) {
    const div = document.createElement("div"); div.className = "hist"; div.id = "hist-" + name;
    div.innerHTML = `<div class="hist-title"><span class="name"></span><span class="info"></span><a href="#" class="nan"></a></div>
      <canvas width="${HIST.width}" height="${HIST.height}"></canvas><div class="hist-axis"><span></span><span></span></div>`;
    div.querySelector(".name").textContent = name;
    div.querySelector(".nan").onclick = (e) => { e.preventDefault(); setRange(name, "nan"); };
    attachBrush(div.querySelector("canvas"), name);
    box.appendChild(div);
  }
}

async function loadHistograms(force) {  // force: the rows changed under the same filters (new shards committed)
  const filters = filterParams();
  if (!force && filters.toString() === HIST.filters) return;  // back / forward to another sample of one view
  HIST.filters = filters.toString();
  const generation = ++HIST.generation;  // a later load wins over a slow earlier one
  await Promise.all(state.info.choices.numeric.map(async ({ name }) => {
    const q = new URLSearchParams(filters); q.set("column", name); q.set("bins", HIST.bins);
    try {
      const data = await getJSON("/api/histogram?" + q);
      if (generation === HIST.generation) { HIST.data[name] = data; drawHistogram(name); }
    } catch (e) {
      if (generation === HIST.generation) $("hist-" + name).querySelector(".info").textContent = "error: " + e.message;
    }
  }));
}

function drawHistogram(name, drag) {
  const data = HIST.data[name], div = $("hist-" + name), canvas = div.querySelector("canvas");
  const ctx = canvas.getContext("2d"), n = data.counts.length, bw = canvas.width / Math.max(n, 1);
  const max = Math.max(1, ...data.counts), range = parseRange(state.ranges[name]);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  data.counts.forEach((count, i) => {
    const inside = range && data.edges[i + 1] >= range[0] && data.edges[i] <= range[1];
    const h = count ? Math.max(2, Math.round(count / max * (canvas.height - 2))) : 0;  // a lone outlier stays visible
    ctx.fillStyle = range ? (inside ? "#2f62c9" : "#cfcfcf") : "#6f8193";
    ctx.fillRect(i * bw + 0.5, canvas.height - h, Math.max(1, bw - 1), h);
  });
  if (drag) {
    ctx.fillStyle = "rgba(47, 98, 201, 0.25)";
    ctx.fillRect(Math.min(drag.x0, drag.x1), 0, Math.abs(drag.x1 - drag.x0) + 1, canvas.height);
  }
  const kept = data.total - data.nan;
  const info = div.querySelector(".info");
  info.textContent = `n ${kept}`; info.title = "rows with a value among those the other filters keep";
  const nan = div.querySelector(".nan");
  nan.textContent = data.nan ? `NaN ${data.nan}` : ""; nan.title = "show the rows without a value";
  const axis = div.querySelectorAll(".hist-axis span");
  const ends = data.integer ? [Math.ceil(data.edges[0]), Math.floor(data.edges[n])] : [data.edges[0], data.edges[n]];
  axis[0].textContent = n ? fmt(ends[0]) : ""; axis[1].textContent = n ? fmt(ends[1]) : "";
  div.classList.toggle("active", name in state.ranges);
}

function attachBrush(canvas, name) {
  canvas.onmousedown = (e) => {
    const data = HIST.data[name];
    if (!data || !data.counts.length) return;
    e.preventDefault();
    const box = canvas.getBoundingClientRect();
    const x = (ev) => Math.min(Math.max(ev.clientX - box.left, 0), box.width - 0.01) * canvas.width / box.width;
    const drag = { x0: x(e), x1: x(e) };
    const move = (ev) => { drag.x1 = x(ev); drawHistogram(name, drag); };
    const up = (ev) => {
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up);
      drag.x1 = x(ev); brushed(name, drag, canvas.width);
    };
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  };
}

function bound(x, integer, up) {  // a short bound (6 digits) that keeps every value of the brushed bins
  if (integer) return String(up ? Math.floor(x) : Math.ceil(x));
  if (!Number.isFinite(x) || x === 0) return String(x);
  const unit = 10 ** (Math.floor(Math.log10(Math.abs(x))) - 5);
  const short = Number(((up ? Math.ceil(x / unit) : Math.floor(x / unit)) * unit).toPrecision(6));
  return String((up ? short >= x : short <= x) ? short : x);
}

function brushed(name, drag, width) {
  const data = HIST.data[name], n = data.counts.length, bw = width / n;
  const a = Math.min(n - 1, Math.floor(Math.min(drag.x0, drag.x1) / bw));
  const b = Math.min(n - 1, Math.floor(Math.max(drag.x0, drag.x1) / bw));
  setRange(name, `${bound(data.edges[a], data.integer, false)}..${bound(data.edges[b + 1], data.integer, true)}`);
}
