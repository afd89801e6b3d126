"""Perception study toolkit (paper §5.3, §6, §8.1, Table 2; SPEC §6).

Stages, one module each, every one a set of pure functions on DataFrames plus thin I/O:

* :mod:`.select`    the study sample (900 utterances, 100 per activation x valence bin pair,
  length extremes and gender balance) and its 10 modulations per utterance;
* :mod:`.export`    crowdsourcing pairs: 16-bit WAVs with hashed names, ``tasks.csv`` (what the
  platform shows), ``key.csv`` (the answer key, never shown), gold pairs, README for the operator;
* :mod:`.responses` ingest and validation of the platform's responses, quality control (§6.1);
* :mod:`.table2`    per-condition fractions judged different and mean change (Table 2), Cohen's
  kappa with annotators as individuals (Hoek & Scholman 2017), the perception partition;
* :mod:`.simulate`  simulated crowds with known true effects, for tests and demos.
"""
