"""Every rule of tests/dialect_rules.md has a test that names it, in the module of its dialect,
and no test names a rule the list lacks."""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULE = re.compile(r"\b(?:COMMON|BS|OO|PC)-\d{2}\b")
MODULES = {
    "BS": ("test_dialect_business_suite.py",),
    "OO": ("test_dialect_onlyoffice.py",),
    "PC": ("test_dialect_payorcrm.py",),
    "COMMON": ("test_dialect_business_suite.py", "test_dialect_onlyoffice.py"),
}


def listed_rules() -> list[str]:
    """The ids of the rule tables (a row starts with `| ID |`), in order."""
    text = (HERE / "dialect_rules.md").read_text(encoding="utf-8")
    return re.findall(r"^\| ((?:COMMON|BS|OO|PC)-\d{2}) \|", text, flags=re.M)


@functools.cache  # read once a module, not once a rule
def named_by_tests(module: str) -> set[str]:
    """The ids that a test function of `module` names in its docstring or its comments."""
    source = (HERE / module).read_text(encoding="utf-8")
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            found.update(RULE.findall(ast.get_docstring(node) or ""))
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                found.update(RULE.findall(comments.get(line, "")))
    return found


def test_the_rule_list_is_well_formed():
    rules = listed_rules()
    assert len(rules) == len(set(rules)), "a rule id is listed twice"
    for family in MODULES:
        numbers = [int(r.split("-")[1]) for r in rules if r.startswith(family + "-")]
        assert numbers == list(range(1, len(numbers) + 1)), f"{family} ids are not 01, 02, ..."


def test_every_rule_has_a_test_in_its_dialects_modules():
    missing = [
        f"{rule} in {module}"
        for rule in listed_rules()
        for module in MODULES[rule.split("-")[0]]
        if rule not in named_by_tests(module)
    ]
    assert missing == [], "rules without a test: " + ", ".join(missing)


def test_no_test_names_a_rule_that_is_not_listed():
    listed = set(listed_rules())
    modules = {m for ms in MODULES.values() for m in ms}
    unknown = sorted(set().union(*(named_by_tests(m) for m in modules)) - listed)
    assert unknown == [], "tests name rules the list lacks: " + ", ".join(unknown)
