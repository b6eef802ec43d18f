"""The README's package map matches the package tree, and every docs/ page is linked from the README (and every
link the README makes to a file points at one)."""

from __future__ import annotations

import re

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
