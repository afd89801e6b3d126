"""Table 3 (paper §8.2–8.3, Table 3; SPEC §8, §10): UAR per noise row, model, regime column and task.

The rows, cells, statistics and renderings are every UAR table's (:mod:`sernoise.evaluation.uar_table`,
whose docstring describes them); Table 3 shows the models of ``training.models`` (then any other
model that has predictions), less the noise-robust arms when the workflow builds it (those are
Table 4's), and its caption says what each comparison asks.  Table 3 also tests, in each column,
All noises** against Perception-retaining (comparison (c), the paper's RQ3 claim, §8.3), in the
same Bonferroni family.
"""

from __future__ import annotations

from .uar_table import UarTable, build_uar_table, uar_caption

TITLE = "Table 3"
CSV_NAME = "table3.csv"


def build_table3(confusion, config: dict, conditions, **options) -> UarTable:
    """Table 3 from confusion counts and the configuration; ``options`` are
    :func:`sernoise.evaluation.uar_table.build_uar_table`'s (``tested``, ``skipped``, ``exclude``, ...)."""
    options.setdefault("all_vs_retaining", True)  # the paper's RQ3 claim (§8.3): All noises** vs Perception-retaining
    table = build_uar_table(confusion, config, conditions, title=TITLE, csv_name=CSV_NAME, **options)
    table.caption_text = caption(table)
    return table


def caption(table: UarTable) -> str:
    """The UAR-table caption naming Table 3's models, with the asides on what each comparison asks."""
    return uar_caption(table, ", ".join(f"{table.label(m)}" for m in table.models))
