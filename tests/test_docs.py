"""The README stays a front page and docs/results.md stays what the committed reports say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_readme_is_a_front_page_with_the_two_commands_first():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 300
    first_code = next(i for i, line in enumerate(lines) if line.startswith("```"))
    assert lines[first_code + 1].startswith("make demo") and lines[first_code + 2].startswith("make test")
    assert first_code < 30


def test_every_local_link_in_the_readme_and_docs_exists():
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.relative_to(REPO)} links to missing {target}"


def test_results_doc_is_current_with_the_committed_reports():
    """docs/results.md's generated section is what benchmarks/results_doc.py makes of
    benchmarks/results/**/report.json and rd.json (rerun the script after adding a report)."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "results_doc.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
