"""Test helpers for the log: a slow reference implementation and an in-memory node store.

Not used by production code; kept in the package so other packages' tests can use it.
"""
