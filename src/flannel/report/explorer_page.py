"""The token explorer page: one self-contained HTML file (no server, no network) with the explorer's data
(flannel.report.explorer) embedded as JSON and its script inline. Pick a token by id or string (or click a dead
token in the table) to see its row's distances from the origin and from the dead centroid over the steps (a plot
and the numbers), its lattice phases and freeze step, and where it sits in the cloud."""

from __future__ import annotations

import html
import json

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin: 0.6em 0 0.3em; }
.panels { display: flex; flex-wrap: wrap; gap: 1.5em; }
.panel { border: 1px solid #ccc; border-radius: 4px; padding: 0.5em 1em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 1px 8px; text-align: right; border-bottom: 1px solid #eee; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
#dead-table { max-height: 420px; overflow-y: auto; display: inline-block; }
#dead-table tr:hover { background: #fde; cursor: pointer; }
#trajectory-table { max-height: 300px; overflow-y: auto; display: inline-block; }
#matches span { margin-right: 0.8em; cursor: pointer; color: #06c; }
.dead { color: #c33; } .live { color: #555; }
"""

SCRIPT = r"""
const embedded = document.getElementById("data");
const data = JSON.parse(embedded.textContent);
embedded.remove();  // the parsed copy is all the page needs: the text would double the memory it holds
const nPoints = data.steps.length, nRows = data.tokens.id.length;
const rowOfId = new Map(data.tokens.id.map((id, row) => [id, row]));
const fmt = (v) => (v === null || v === undefined || Number.isNaN(v)) ? "never" : String(v);
const num = (v) => (v === null || !Number.isFinite(v)) ? "n/a" : Number(v).toPrecision(6);  // n/a: no dead centroid
const esc = (s) => s.replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const lastStep = data.steps[nPoints - 1];
const logSteps = lastStep > 100;
const xOf = (step, width) => logSteps ? width * Math.log10(1 + step) / Math.log10(1 + lastStep) : width * step / Math.max(1, lastStep);

// Each row's series is its own base64 string of float32s, decoded when the row is shown: nothing to decode at load.
function seriesOf(row, name) {
  const text = atob(data.series[name][row]), bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return Array.from(new Float32Array(bytes.buffer));
}

function plot(row) {
  const width = 520, height = 240, pad = 40, o = seriesOf(row, "origin"), c = seriesOf(row, "centroid");
  const values = o.concat(c).filter(Number.isFinite), top = Math.max(0, ...values) * 1.05, bottom = 0;
  const y = (v) => height - pad - (height - 2 * pad) * (v - bottom) / (top - bottom || 1);
  // A point with no value (no dead centroid) is left out: the line starts again at the next one.
  const path = (vs) => vs.map((v, i) => Number.isFinite(v) ? `${i && Number.isFinite(vs[i - 1]) ? "L" : "M"}${(pad + xOf(data.steps[i], width - 2 * pad)).toFixed(1)},${y(v).toFixed(1)}` : "").join("");
  const ticks = [bottom, top / 2, top].map((v) => `<text x="2" y="${y(v) + 4}" font-size="10">${v.toPrecision(3)}</text>`).join("");
  return `<svg width="${width}" height="${height}" role="img">
    <rect x="${pad}" y="${pad}" width="${width - 2 * pad}" height="${height - 2 * pad}" fill="none" stroke="#ccc"/>${ticks}
    <path d="${path(o)}" fill="none" stroke="#1f77b4" stroke-width="1.6"/>
    <path d="${path(c)}" fill="none" stroke="#d62728" stroke-width="1.6"/>
    <text x="${pad}" y="${height - 8}" font-size="11">step 0 … ${lastStep}${logSteps ? " (log(1 + step) axis)" : ""}</text>
    <text x="${pad}" y="14" font-size="11" fill="#1f77b4">distance from the origin</text>
    <text x="${pad + 180}" y="14" font-size="11" fill="#d62728">distance from the dead centroid</text></svg>`;
}

function phaseBar(side, row) {
  const p = data.phases[side], width = 520;
  const starts = [0, p.mid_from[row], p.late_from[row], p.frozen_from[row]].map((s) => s === null ? lastStep : s);
  const colors = ["#d62728", "#ff7f0e", "#bcbd22", "#1f77b4"], names = ["early", "mid-life", "late", "frozen"];
  const boxes = names.map((name, i) => {
    const from = starts[i], to = i < 3 ? starts[i + 1] : lastStep;
    const x0 = xOf(from, width), x1 = xOf(Math.max(from, to), width);
    return `<rect x="${x0}" y="0" width="${Math.max(0, x1 - x0)}" height="14" fill="${colors[i]}"><title>${name}: ${from}-${to}</title></rect>`;
  }).join("");
  return `<svg width="${width}" height="16">${boxes}</svg>`;
}

function drawCloud(row) {
  const canvas = document.getElementById("cloud"), ctx = canvas.getContext("2d");
  const xs = data.cloud.x, ys = data.cloud.y, w = canvas.width, h = canvas.height;
  const lo = [Math.min(...xs), Math.min(...ys)], hi = [Math.max(...xs), Math.max(...ys)];
  const span = Math.max(hi[0] - lo[0], hi[1] - lo[1]) || 1;
  const px = (i) => [10 + (w - 20) * (xs[i] - lo[0]) / span, h - 10 - (h - 20) * (ys[i] - lo[1]) / span];
  ctx.clearRect(0, 0, w, h);
  for (const wanted of [0, 1]) {
    ctx.fillStyle = wanted ? "rgba(214,39,40,0.6)" : "rgba(120,120,120,0.35)";
    for (let i = 0; i < nRows; i++) if (data.tokens.dead[i] === wanted) { const [x, y] = px(i); ctx.fillRect(x - 1, y - 1, 2, 2); }
  }
  if (row !== null) { const [x, y] = px(row); ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.stroke(); }
}

function show(row) {
  const t = data.tokens, dead = t.dead[row] === 1;
  const lines = data.matrices.map((side) => {
    const p = data.phases[side];
    return `<tr><th>${side}</th><td>${fmt(p.mid_from[row])}</td><td>${fmt(p.late_from[row])}</td><td>${fmt(p.frozen_from[row])}</td><td>${fmt(p.last_move[row])}</td><td>${phaseBar(side, row)}</td></tr>`;
  }).join("");
  document.getElementById("token").innerHTML = `<h2>token ${t.id[row]} <code>${esc(t.text[row])}</code>
    <span class="${dead ? "dead" : "live"}">${dead ? "dead" : "live"}</span>, count ${t.count[row]}</h2>
    <p>final distance from the origin ${num(data.final.origin[row])}, from the dead centroid ${num(data.final.centroid[row])}</p>
    <table id="phases"><thead><tr><th>matrix</th><th>mid-life from</th><th>late from</th><th>frozen from</th><th>last move</th><th>phases (early red, mid-life orange, late olive, frozen blue)</th></tr></thead><tbody>${lines}</tbody></table>`;
  const o = seriesOf(row, "origin"), c = seriesOf(row, "centroid");
  document.getElementById("plot").innerHTML = plot(row);
  document.getElementById("trajectory").innerHTML = data.steps.map((s, i) => `<tr><td>${s}</td><td>${num(o[i])}</td><td>${num(c[i])}</td></tr>`).join("");
  drawCloud(row);
}

function find() {
  const query = document.getElementById("query").value.trim(), matches = [];
  const asId = /^#?\d+$/.test(query) ? rowOfId.get(Number(query.replace("#", ""))) : undefined;
  if (asId !== undefined) return show(asId);
  for (let i = 0; i < nRows; i++) {
    const text = data.tokens.text[i];
    if (text === query) matches.unshift(i); else if (query && text.includes(query) && matches.length < 30) matches.push(i);
  }
  const label = (i) => `${data.tokens.id[i]} <code>${esc(data.tokens.text[i])}</code>`;
  document.getElementById("matches").innerHTML = matches.length ? matches.map((i) => `<span data-row="${i}">${label(i)}</span>`).join("") : "no token matches";
  if (matches.length) show(matches[0]);
}

const deadRows = data.tokens.dead.flatMap((d, i) => d ? [i] : []);
const side = "W", columns = [
  ["id", (i) => data.tokens.id[i]], ["token", (i) => data.tokens.text[i]],
  ["freeze step (W)", (i) => data.phases[side].frozen_from[i]], ["lifespan: last move (W)", (i) => data.phases[side].last_move[i]],
  ["final radius from the origin", (i) => data.final.origin[i]], ["final radius from the dead centroid", (i) => data.final.centroid[i]]];
let order = {column: 2, sign: 1};
function table() {
  const key = columns[order.column][1];
  const rank = (v) => v === null ? Infinity : v;
  deadRows.sort((a, b) => { const x = rank(key(a)), y = rank(key(b)); return order.sign * (x < y ? -1 : x > y ? 1 : a - b); });
  document.getElementById("dead-head").innerHTML = columns.map(([name], i) => `<th data-column="${i}">${name}${i === order.column ? (order.sign > 0 ? " ▲" : " ▼") : ""}</th>`).join("");
  document.getElementById("dead-rows").innerHTML = deadRows.map((i) => `<tr data-row="${i}">${columns.map(([, f], k) => `<td>${k === 1 ? esc(f(i)) : fmt(f(i))}</td>`).join("")}</tr>`).join("");
}

document.getElementById("show").addEventListener("click", find);
document.getElementById("query").addEventListener("keydown", (e) => { if (e.key === "Enter") find(); });
document.getElementById("matches").addEventListener("click", (e) => { const s = e.target.closest("span"); if (s) show(Number(s.dataset.row)); });
document.getElementById("dead-head").addEventListener("click", (e) => {
  const column = Number(e.target.closest("th").dataset.column);
  order = {column, sign: order.column === column ? -order.sign : 1};
  table();
});
document.getElementById("dead-rows").addEventListener("click", (e) => { const r = e.target.closest("tr"); if (r) show(Number(r.dataset.row)); });
document.getElementById("summary").textContent = `${nRows} recorded tokens, ${deadRows.length} dead; ${data.n_records} records, ${nPoints} of them embedded`;
table();
show(deadRows.length ? deadRows[0] : 0);
document.body.dataset.ready = "1";
"""


def render(data: dict) -> str:
    """The page, with `data` embedded as JSON (its "</" escaped, so no string in it can close the script)."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = html.escape(f"Token explorer: {data['run']}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head>
<body>
<h1>{title}</h1>
<p id="summary"></p>
<p><label>token id or string: <input id="query" size="24"></label> <button id="show">show</button>
<span id="matches"></span></p>
<div id="token" class="panel"></div>
<div class="panels">
<div class="panel"><h2>trajectory of its row of W</h2><div id="plot"></div>
<div id="trajectory-table"><table><thead><tr><th>step</th><th>distance from the origin</th>
<th>distance from the dead centroid</th></tr></thead><tbody id="trajectory"></tbody></table></div></div>
<div class="panel"><h2>where it sits in the cloud (W at the last step, PCA; dead red, live grey)</h2>
<canvas id="cloud" width="420" height="420"></canvas></div>
</div>
<h2>dead tokens (click a column to sort, a row to show it)</h2>
<div id="dead-table"><table><thead><tr id="dead-head"></tr></thead><tbody id="dead-rows"></tbody></table></div>
<script id="data" type="application/json">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""
