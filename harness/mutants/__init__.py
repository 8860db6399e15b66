"""Deliberate kernel breakages for `rwp-harness mutate`: the catalog (what a
mutant is, reading a set of them, applying one to a tree) and the generator."""
