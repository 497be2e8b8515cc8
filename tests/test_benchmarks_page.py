"""BENCHMARKS.md upkeep: a benchmark re-run alone replaces only its own sections."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

from run_all import replace_sections  # noqa: E402

PAGE = """# Benchmarks

Header.

## Tokenizer

old tokenizer table

## Pretraining speed

old speed table
"""


def test_replaces_the_section_with_its_title_and_keeps_the_rest():
    page = replace_sections(PAGE, "## Tokenizer\n\nnew table\n", "(again)")
    assert page == PAGE.replace("old tokenizer table", "new table\n\n(again)")


def test_last_section_and_several_at_once():
    output = "## Pretraining speed\n\nfast\n\n## Tokenizer\n\nquick\n"
    page = replace_sections(PAGE, output, "(n)")
    assert "old" not in page
    assert page.index("## Tokenizer\n\nquick\n\n(n)\n\n## Pretraining speed\n\nfast\n\n(n)\n") > 0
    assert page.startswith("# Benchmarks\n\nHeader.\n\n")


def test_a_new_section_is_appended():
    page = replace_sections(PAGE, "## Memory\n\nsmall", "(n)")
    assert page == PAGE + "\n## Memory\n\nsmall\n\n(n)\n"
