// The sample view's second store (`annotate serve A --compare B`): B's layers of the same sample
// (matched by sample_id and frame_index) beside A's, under the same opacity sliders, and that row's
// IoU per label channel and region (GET /api/compare/<row>). Plain JS, loaded before app.js.
"use strict";

function buildCompare(info) {  // after buildControls: B's layers start at A's opacities
  if (!info.compare) return;
  $("compare").hidden = false;
  $("compare-store").textContent = info.compare;
  for (const name of info.layers) {
    const img = document.createElement("img"); img.id = "b-layer-" + name; img.alt = "B " + name;
    img.style.opacity = name === "image" ? 1 : $("layer-" + name).style.opacity;
    $("stack-b").appendChild(img);
  }
}

function iouLine(title, values) {
  const fmt = (v) => (v === null ? "–" : v.toFixed(3));
  const div = document.createElement("div");
  div.textContent = `${title}: ` + Object.entries(values).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
  return div;
}

async function showCompare(row) {
  if (!state.info.compare) return;
  const box = $("compare-iou");
  let data;
  try { data = await getJSON(`/api/compare/${row}`); } catch (e) { box.textContent = "error: " + e.message; return; }
  if (state.open !== row) return;  // another sample was asked for meanwhile
  const missing = data.b_row === null;
  for (const name of state.info.layers) {
    const img = $("b-layer-" + name);
    if (missing) img.removeAttribute("src"); else img.src = `/compare/${row}/${name}.png`;
  }
  $("stack-b").classList.toggle("missing", missing);
  box.innerHTML = "";
  if (missing) { box.textContent = `not in B (sample ${data.sample_id}, frame ${data.frame_index})`; return; }
  box.append(iouLine(`B row ${data.b_row} (${data.status_b}), mean channel IoU`, { "": data.mean_channel_iou }),
    iouLine("IoU channels", data.channel_iou), iouLine("IoU regions", data.region_iou));
}
