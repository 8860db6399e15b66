"""docs/contract.md stays in step with the tests that check it."""

from harness import contract


def test_contract_doc_is_up_to_date():
    text = contract.DOC.read_text()
    assert contract.render(text, contract.references()) == text, \
        "docs/contract.md is stale: run 'python -m harness.contract'"


def test_tests_only_name_behaviours_the_contract_has():
    known = set(contract._ENTRY.findall(contract.DOC.read_text()))
    assert set(contract.references()) <= known


def test_every_contract_test_names_a_behaviour():
    """A test in a contract program that names no behaviour is not traceable."""
    from harness.run import guestprogs
    named = {t.split("::")[1].removesuffix("__<type>")
             for ts in contract.references().values() for t in ts}
    for prog in guestprogs.discover():
        for sub in prog.subtests:
            base = prog.function_of(sub)
            assert base in named, f"{prog.name}::{sub} names no contract behaviour"


def test_an_entry_without_a_tests_line_gets_its_own():
    text = ("Status of this document: x\n\n**A1 — one**\n- Expect: a\n\n## B. next\n\n"
            "**B1 — two**\n- Expect: b\n- **Tests:** none yet\n")
    out = contract.render(text, {"A1": ["c/x::a"], "B1": ["c/x::b"]})
    assert "**A1 — one**\n- Expect: a\n- **Tests:** `c/x::a`\n\n## B. next" in out
    assert "- Expect: b\n- **Tests:** `c/x::b`\n" in out


def test_a_tests_line_under_a_section_heading_is_dropped():
    text = ("Status of this document: x\n\n**A1 — one**\n- **Tests:** none yet\n\n## B. next\n"
            "- **Tests:** none yet\n\n**B1 — two**\n- **Tests:** none yet\n")
    out = contract.render(text, {"A1": ["c/x::a"]})
    assert "## B. next\n\n**B1 — two**" in out and out.count("- **Tests:**") == 2


def test_a_block_comment_above_a_c_test_names_its_behaviours(tmp_path):
    from harness.run import guestprogs
    src = tmp_path / "t.c"
    src.write_text("/* C5: one line */\nRWP_TEST(one)\n{\n}\n\n"
                   "/*\n * D12, E2: a block comment\n * over two lines\n */\nRWP_TEST(two)\n{\n}\n\n"
                   "int x; /* not a comment of the test */\n\nRWP_TEST(three)\n{\n}\n")
    records = {r.name: r for r in guestprogs._c_records(src)}
    assert records["one"].contract_ids == ("C5",) and records["one"].doc == "C5: one line"
    assert records["two"].contract_ids == ("D12", "E2")
    assert records["two"].doc == "D12, E2: a block comment over two lines"
    assert records["three"].contract_ids == ()
