"""Black-box noise attack (paper §7.5, Algorithm 1, §8.5, Table 5; SPEC §9).

* :mod:`.algorithm`: Algorithm 1 over any ``query(samples) -> labels`` callable; query
  counting, budgets, batching, deriving smaller budgets from one run;
* :mod:`.perturb`: noise instances per category at an SNR decrease (additive noise rescaled,
  distortion knobs searched on the difference-signal SNR);
* :mod:`.knowledge`: degradation per category on the validation role (the optional knowledge);
* :mod:`.models`: black-box predictors of trained models (registry: T-DNN, T-DNN-NR, E-DNN, E-DNN-NR);
* :mod:`.runner`: one job (utterances × runs × budgets) and its result rows;
* :mod:`.inputs`: what an attack job loads once (predictor, manifest, audio, noise pools) and each step selects;
* :mod:`.settings`: the ``attack:`` config section checked against the rest of the config;
* :mod:`.table5`: Table 5 (success rates, paired t-tests with Bonferroni) and the budget plot.

Modules are imported on use (torch is needed only to run a model).
"""

from .algorithm import DECREASES, PHASES, AttackResult, Query, Step, algorithm1, attack, check_budget, derive

__all__ = ["DECREASES", "PHASES", "AttackResult", "Query", "Step", "algorithm1", "attack", "check_budget", "derive"]
