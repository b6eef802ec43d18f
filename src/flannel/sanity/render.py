"""The sanity report written out: JSON as assembled (flannel.sanity.report), markdown for people, and the manifest
of the run files as TSV."""

from __future__ import annotations

from ..outputs import write_json, write_text, write_tsv


def write_report(report: dict, json_path, md_path, manifest_path) -> None:
    write_json(json_path, report)
    write_text(md_path, markdown(report))
    rows = report["checks"]["manifest"]["rows"] + report.get("legacy", {}).get("checks", {}).get("manifest", {}).get("rows", [])
    columns = ("path", "bytes", "sha256")
    write_tsv(manifest_path, [{c: r[c] for c in columns} for r in sorted(rows, key=lambda r: r["path"])])


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def _mark(passed) -> str:
    return {True: "✓", False: "✗", None: "–"}[passed]


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows])


def markdown(report: dict) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = ["# Sanity checks: Flannel 1 vs Flannel 3", "",
             f"**{verdict}**; reproducibility {'passed' if report['reproducibility']['passed'] else 'FAILED'}.", "",
             f"Reference (Flannel 1): `{report['reference']}`, seed {report['reference_seed']}; "
             f"the sweep (Flannel 3): the tied runs. {report['replica_note'].capitalize()}.", ""]
    for failure in report["reproducibility"]["failures"]:
        lines += [f"- {failure}"]
    sections = [("", report["checks"])]
    if "legacy" in report:
        legacy = report["legacy"]
        sections.append((f"Legacy files: 1.20a `{legacy['flannel1']}`, 1.20c `{legacy['flannel3']}`, masks `{legacy['masks']}`",
                         legacy["checks"]))
    for heading, checks in sections:
        if heading:
            lines += ["", f"## {heading}"]
        for entry in checks.values():
            kind = " (reproducibility)" if entry["reproducibility"] else ""
            lines += ["", f"### {_mark(entry['passed'])} {entry['number']}. {entry['title']}{kind}", "", entry["summary"], ""]
            lines += _table(entry["rows"])
    return "\n".join(lines).rstrip() + "\n"
