"""Evaluation (paper §7.2.3, §8.2–8.3, Table 3; SPEC §8, §10): prediction files -> metrics ->
Table 3 with paired tests (speaker-level by default) and Bonferroni correction -> plots.

* :mod:`.metrics` UAR, per-class recall, weighted F1 and confusion counts per prediction file
  and test condition (``results/{corpus}/metrics/metrics.csv`` and ``confusion.csv``);
* :mod:`.stats`   speaker-level paired bootstrap / permutation tests and confidence intervals, the
  paired t-test over (fold, repetition) pairs, Bonferroni over a table;
* :mod:`.labels`  display labels and orders (models, tasks, regime columns, categories, distortions);
* :mod:`.uar_table` the UAR tables in the paper's Table 3 layout: rows, cells, statistics,
  renderings (CSV, Markdown, LaTeX, HTML), and what rules make_table3 / make_table4 run
  (:func:`.uar_table.run_table_rule`);
* :mod:`.table3`  Table 3: the UAR table of the models (less the noise-robust arms);
* :mod:`.table4`  Table 4: the UAR table of the noise-robust arms;
* :mod:`.sweep`   the augmentation-fraction sweep;
* :mod:`.render`  what the tables (3, 4, 5, sweep) render and write alike;
* :mod:`.plots`   UAR against SNR, UAR per condition.
"""
