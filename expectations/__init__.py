"""Validation suites as code: one module per contract table (see ``_suite`` for the shape).

``SUITES`` is the order the gate runs them in: reference snapshots first, so rows they
quarantine are already out of the references the fact tables are checked against.
"""
from __future__ import annotations

import importlib

TABLES = ("insured_persons", "institutions", "practitioners", "catalog",
          "settlements", "settlement_items")


def suite_module(table: str):
    """The suite module of one contract table."""
    if table not in TABLES:
        raise KeyError(f"no validation suite for table {table!r}")
    return importlib.import_module(f"expectations.{table}")
