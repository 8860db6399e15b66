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
    from harness import guestprogs
    named = {t.split("::")[1].removesuffix("__<type>")
             for ts in contract.references().values() for t in ts}
    for prog in guestprogs.discover():
        mem = guestprogs._mem_types()
        for sub in prog.subtests:
            base = next((sub[: -len(t) - 2] for t in mem if sub.endswith("__" + t)), sub)
            assert base in named, f"{prog.name}::{sub} names no contract behaviour"
