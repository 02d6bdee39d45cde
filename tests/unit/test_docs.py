"""The README is a front door and the rest lives in the docs site: short, its links resolve,
every page is in the site's navigation, and the site builds with link checking."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) < 150
    assert "make run" in text and "make test" in text  # the two set-up commands
    assert "![" in text  # a screenshot


def test_readme_links_resolve():
    links = [link for link in LINK.findall(README.read_text())
             if not link.startswith(("http://", "https://", "#"))]
    assert links, "the README links to the docs"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_page_is_in_the_navigation():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = {page for entry in config["nav"] for page in entry.values()}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages == nav, f"pages not in the nav: {pages - nav}; nav entries missing: {nav - pages}"
    assert config["strict"] is True


def test_the_site_builds_with_no_broken_link(tmp_path):
    pytest.importorskip("mkdocs", reason="make docs needs mkdocs (requirements-dev.txt)")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    build(load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site")))
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "benchmarks" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    """The check above could pass on a site that checks nothing: one bad link must fail it."""
    pytest.importorskip("mkdocs", reason="make docs needs mkdocs (requirements-dev.txt)")
    import shutil

    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "limits.md").write_text((docs / "limits.md").read_text() + "\n[gone](missing.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text())
    with pytest.raises(Abort):
        build(load_config(str(config), site_dir=str(tmp_path / "site")))
