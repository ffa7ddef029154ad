"""README's directive reference is generated from the directive table and must not drift."""

import re
from pathlib import Path

from webserv.config.reference import markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_directive_table_matches_the_directive_table():
    text = README.read_text()
    found = re.search(r"<!-- directives:start[^>]*-->\n(.*?)\n<!-- directives:end -->", text, re.S)
    assert found, "README lost its generated directive table markers"
    assert found.group(1) == markdown(), "regenerate it: python -m webserv --directives"


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("\n## ", 1)[0]
    assert "make run" in head and "make test" in head
