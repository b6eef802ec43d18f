"""The HTML report of the shared test-config run (`workflow_run`), opened in a real headless Chromium: the page
runs without console errors, every figure and table the report holds loads in the report's own viewer, and a
screenshot is not blank. Chromium is the distribution's package (`apt-get install -y chromium`; .ci/run
installs it)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from helpers import snakemake

from flannel.report import figures, tables
from flannel.report.findings import OPEN_QUESTIONS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The report is a React app built from inline scripts; a few seconds of virtual time let it render.
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
            "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0"]
# Before any of the page's own scripts: record console.error calls, uncaught exceptions, unhandled rejections and
# resources that fail to load (a broken image), which Chromium's log does not tell apart from console.log.
ERROR_PROBE = """<script>
window.__errors = [];
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push("console.error: " + args.join(" ")); __consoleError(...args); };
window.addEventListener("error", (event) => {
  const target = event.target && event.target !== window ? event.target : null;
  window.__errors.push(target ? "failed to load: <" + target.tagName.toLowerCase() + "> " + (target.src || "").slice(0, 60)
                              : "uncaught: " + event.message);
}, true);
window.addEventListener("unhandledrejection", (event) => window.__errors.push("unhandled rejection: " + event.reason));
window.__report = (seen) => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__errors, seen: seen});
  document.body.appendChild(out);
};
</script>"""
# Each result shown in turn through the report's own viewer (what a click on the result does): whether each
# figure's <img> decoded (natural size > 0) and each table's frame loaded; then figure a again, for the screenshot.
VIEWER_PROBE = """<script>
window.addEventListener("load", async () => {
  const pause = (ms) => new Promise((done) => setTimeout(done, ms));
  // Show a result and resolve once its <img> or <iframe> has loaded (true) or failed (false); the listeners go on
  // in a mutation callback, before the browser can have loaded it.
  const show = (tag, view) => new Promise((done) => {
    const observer = new MutationObserver(() => {
      const element = Array.from(document.querySelectorAll(tag)).find((e) => e.getAttribute("src") === view.contentPath);
      if (!element) return;
      observer.disconnect();
      if (tag === "img" && element.complete) return done(element);
      element.addEventListener("load", () => done(element));
      element.addEventListener("error", () => done(null));
    });
    observer.observe(document.getElementById("app"), {childList: true, subtree: true, attributes: true});
    setTimeout(() => done(null), 5000);
    app.setView(view);
  });
  while (!app) await pause(50);  // React renders the app (and so sets `app`) after the load event
  const seen = {};
  const paths = Object.keys(results).sort();
  for (const path of paths) {
    const mime = getResultMimeType(path), view = {contentPath: results[path].data_uri, resultPath: path};
    if (mime.startsWith("image/")) {
      const img = await show("img", {...view, content: "img"});
      seen[path] = {kind: "image", width: img ? img.naturalWidth : 0, height: img ? img.naturalHeight : 0};
    } else if (mime === "text/html") {
      const frame = await show("iframe", {...view, content: "html"});
      // A data: frame is another origin, so its document is out of reach; count the rows of what it loaded.
      const page = atob(view.contentPath.split(",")[1]);
      const body = page.split("<tbody>")[1];  // a page with no table (a film's page) counts no rows
      seen[path] = {kind: "table", loaded: frame !== null, rows: body === undefined ? null : body.split("<tr>").length - 1};
    } else {
      seen[path] = {kind: mime};
    }
  }
  const first = paths.find((path) => getResultMimeType(path).startsWith("image/"));
  await show("img", {content: "img", contentPath: results[first].data_uri, resultPath: first});
  window.__report(seen);
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine: `apt-get install -y chromium` (Debian package) needs root and apt")
    return subprocess.run([CHROMIUM, *HEADLESS, *args], capture_output=True, text=True, timeout=180)


def uncaught(stderr: str) -> list[str]:
    """Chromium's log lines for uncaught exceptions of the page."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]


def probed(html: str, viewer: bool = True) -> str:
    html = html.replace("<head>", "<head>" + ERROR_PROBE, 1)
    if not viewer:
        return html
    # The last </body>: the page's scripts hold the string too.
    body, end, rest = html.rpartition("</body>")
    return body + VIEWER_PROBE + end + rest


def probe(path: Path) -> tuple[dict, str]:
    result = chromium("--dump-dom", path.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, flags=re.S)
    assert found, result.stderr[-3000:]
    return json.loads(html.unescape(found.group(1))), result.stderr


@pytest.fixture(scope="module")
def report(workflow_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(workflow_run, "--report", str(path), "--configfile", "config/test.yaml")
    return path


def test_the_probe_sees_console_errors_exceptions_and_broken_images(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(probed('<html><head></head><body><img src="nothere.png"><script>console.error("boom");'
                           'null.x;</script><script>window.onload = () => window.__report({});</script></body></html>',
                           viewer=False))
    out, stderr = probe(page)
    assert sorted(error.split(":")[0] for error in out["errors"]) == ["console.error", "failed to load", "uncaught"]
    assert len(uncaught(stderr)) == 1


@pytest.mark.slow
def test_the_report_renders_without_uncaught_errors_and_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), result.stderr[-3000:]
    assert uncaught(result.stderr) == []
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1000, 1400)
    # Not blank: many distinct colours, and no single colour covers nearly all of it.
    colours, counts = np.unique(pixels.reshape(-1, 3).round(3), axis=0, return_counts=True)
    assert len(colours) > 50 and counts.max() < 0.95 * counts.sum()


@pytest.mark.slow
def test_every_figure_and_table_loads_in_the_report_viewer_without_errors(report, tmp_path):
    page = tmp_path / "probed.html"
    page.write_text(probed(report.read_text(encoding="utf-8")), encoding="utf-8")
    out, stderr = probe(page)
    assert out["errors"] == [] and uncaught(stderr) == []
    seen = {Path(path).name: entry for path, entry in out["seen"].items()}
    for name in [*figures.FIGURES, *figures.ACROSS_EXPERIMENTS]:
        entry = seen.pop(f"{name}.png")
        assert entry["width"] > 100 and entry["height"] > 100, (name, entry)
    assert seen.pop("token_stats.html") == {"kind": "table", "loaded": True, "rows": len(tables.TOKEN_STATS)}
    assert seen.pop("run_summary.html") == {"kind": "table", "loaded": True, "rows": 3}
    assert seen.pop("first_step.html") == {"kind": "table", "loaded": True, "rows": 3}  # tied W, untied W, untied E
    assert seen.pop("epochs.html")["loaded"] is True
    # 1.20b's four next steps and the series' open questions
    assert seen.pop("findings.html") == {"kind": "table", "loaded": True, "rows": 4 + len(OPEN_QUESTIONS)}
    assert seen.pop("summary.html") == {"kind": "table", "loaded": True, "rows": 3}  # the runs of experiment main
    # The reference runs' film pages and token explorers (one name: seed42.html), tested on their own elsewhere.
    assert seen.pop("seed42.html")["loaded"] is True
    assert list(seen) == ["report.md"]  # the sanity report, shown as text
    shot = tmp_path / "figure.png"  # the report showing figure a, for a person to look at
    chromium(f"--screenshot={shot}", page.as_uri())
    assert image.imread(shot).std() > 0.05
