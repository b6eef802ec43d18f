"""The README's package map matches the package tree, and every docs/ page is linked from the README (and every
link the README makes to a file points at one)."""

from __future__ import annotations

import io
import re
import shlex

from helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def package_map() -> set[str]:
    """The files the README's map of src/flannel/ names, as paths inside the package."""
    block = re.search(r"```text\nsrc/flannel/\n(.*?)```", README, re.S).group(1)
    found, folder = set(), ""
    for line in block.splitlines():
        name = line.split()[0]
        if line.startswith("  ") and not line.startswith("    "):
            folder = name if name.endswith("/") else ""
            if not folder:
                found.add(name)
        else:
            found.add(folder + name)
    return found


def test_the_readme_package_map_is_the_package_tree():
    package = ROOT / "src" / "flannel"
    tree = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    assert package_map() == tree, sorted(package_map() ^ tree)


def test_every_docs_page_is_linked_and_every_link_resolves():
    links = set(re.findall(r"\]\(([\w./-]+\.md)\)", README))
    assert {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")} <= links
    assert all((ROOT / link).is_file() for link in links), links


LIST_FLAGS = ("--configfile", "--config", "--forcerun", "--until", "--omit-from", "--allowed-rules", "--envvars",
              "--set-resources", "--set-threads", "--groups")


def test_the_readme_puts_targets_before_list_taking_flags_and_says_why():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [shlex.split(line.split("  #")[0]) for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
                for line in block.splitlines() if line.startswith("snakemake ")]
    for words in commands:
        in_list = False
        for word in words[1:]:
            if word == "--":
                in_list = False
            elif word.startswith("-"):
                in_list = word in LIST_FLAGS
            elif in_list:
                assert not word.startswith(("results/", "logs/")), f"a target after a list-taking flag: {' '.join(words)}"
    first_target = readme.index("snakemake --cores 1 results/main/runs/untied/seed42.zarr.zip")
    warning = readme[:first_target]
    assert all(f"`{flag}`" in warning for flag in LIST_FLAGS), [flag for flag in LIST_FLAGS if f"`{flag}`" not in warning]




def test_every_caption_parses_without_a_docutils_message():
    """Snakemake renders each caption with docutils and shows its errors as a box in the report (figure k's
    `|dw|` was read as a substitution); the end-to-end report test checks the built report as well."""
    from docutils.core import publish_parts

    for caption in sorted((ROOT / "workflow" / "report").glob("*.rst")):
        messages = io.StringIO()
        publish_parts(caption.read_text(encoding="utf-8"), writer_name="html",
                      settings_overrides={"warning_stream": messages, "report_level": 2})
        assert not messages.getvalue(), f"{caption.name}: {messages.getvalue()}"
