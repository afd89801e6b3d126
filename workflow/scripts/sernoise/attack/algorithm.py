"""Algorithm 1 of the paper (§7.5, "Pseudo-code for testing model robustness"), model-agnostic.

The attacker holds one test utterance, a list of noise instances (one per allowed category, in
random order or ordered by measured degradation) and black-box access to the model's predicted
label.  It perturbs the utterance with growing strength, measured as the decrease ``d`` of the
SNR (``sernoise.attack.perturb``), and stops at the first prediction change.

Exact procedure (the pseudo-code's intent; its literal text returns before the refinement):

* **Reference.**  The model's label for the clean utterance is the reference every query is
  compared with ("compared to the original clean sample").  It is obtained once and is NOT
  counted against the budget: it is what the attack is measured against, not an attempt
  (the caller may pass it in, e.g. from one batch over all utterances).
* **Phase 1.**  Every noise at ``d = 1`` dB, in list order.
* **Phase 2.**  Every noise at ``d = 5`` dB.  When noise ``i`` flips the label at 5 dB, the
  refinement sweep queries noise ``i`` at 2, 3, 4 dB, in that order, and stops at the first
  flip (5 dB is known to flip and is not queried again; 1 dB was already tried in phase 1).
* **Phase 3.**  Every noise at ``d = 10`` dB; a flip of noise ``i`` is refined over 6, 7, 8, 9 dB
  likewise.
* **Fixed-strength noises** (``fixed[i]``: manipulations without a strength knob, such as a
  dropped word) are asked once, in phase 3 with the strongest perturbations (their query
  carries the phase level, 10), and never refined; phases 1 and 2 skip them.
* **Success** is decided by the first query whose label differs from the reference: a
  misclassifying perturbation was found within the budget.  The refinement that follows only
  minimises the decrease; it runs on the budget that is left and is cut when the budget is
  spent, which never turns a success into a failure.  A success reports the noise, the
  smallest flipping decrease found (the refinement's first flip, else the phase level), the
  label there, ``queries`` = every counted query including the refinement's, and
  ``queries_to_flip`` = the count at the first flip.
* **Failure**: the phases end without a flip, or the budget ``k`` is spent first.

Counting: every perturbed sample whose label the algorithm uses is one query, and at most
``k`` queries are ever made (the pseudo-code's ``numAttempts > k`` check after the increment
means that the (k+1)-th answer is never used; we do not even ask it).  ``budget=None`` is ∞.

Batching (``batched=True``): the queries the algorithm allows to run together (a phase's
list, a refinement sweep) go to the model in ONE call, truncated to the budget left.  The
answers are then read in list order exactly as the unbatched loop would read them: each one
read is counted, and reading stops at the first flip; answers past that flip were computed
but are discarded, not counted and never looked at.  So the counted queries, their order,
the outcome and the count are identical to the unbatched run (tests/test_attack.py checks
it); only ``calls`` (model calls) and ``computed`` (samples sent, discarded ones included)
differ.

Budgets from one run: the decisions depend only on earlier answers, so the counted queries of
a run with budget ``k`` are the first ``k`` counted queries of a run with a larger budget, and
:func:`derive` replays the algorithm with budget ``k`` against the recorded answers instead
of the model; the result equals a direct run with budget ``k`` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

# (phase level, refinement decreases in the order they are tried), in dB
PHASES: tuple[tuple[int, tuple[int, ...]], ...] = ((1, ()), (5, (2, 3, 4)), (10, (6, 7, 8, 9)))
DECREASES = tuple(sorted({d for level, refine in PHASES for d in (level, *refine)}))


@dataclass(frozen=True)
class Query:
    """Noise ``noise`` (index into the attack's noise list) at an SNR decrease of ``decrease`` dB."""

    noise: int
    decrease: int


@dataclass(frozen=True)
class Step:
    """One counted query and its answer."""

    query: Query
    label: Hashable
    flipped: bool
    phase: int  # 1, 2 or 3
    refine: bool  # part of a refinement sweep


@dataclass
class AttackResult:
    success: bool
    queries: int  # counted queries (<= budget)
    n_noises: int
    reference: Hashable
    budget: int | None  # None = inf
    fixed: tuple = ()  # per noise: queried once at its configured strength (phase 3, no refinement)
    noise: int | None = None  # index of the successful noise
    decrease: int | None = None  # smallest flipping decrease found
    label: Hashable | None = None  # the model's label at (noise, decrease)
    queries_to_flip: int | None = None
    steps: list[Step] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # samples per model call
    computed: int = 0  # samples sent to the model (>= queries: batched answers past a flip)

    @property
    def sequence(self) -> list[tuple[int, int]]:
        """The counted queries as ``(noise, decrease)`` pairs, in order."""
        return [(s.query.noise, s.query.decrease) for s in self.steps]

    def outcome(self) -> tuple:
        """What must not depend on batching: success, counts, the counted queries and their answers."""
        return (self.success, self.queries, self.noise, self.decrease, self.label, self.queries_to_flip,
                [(s.query, s.label, s.flipped, s.phase, s.refine) for s in self.steps])


def check_budget(budget) -> int | None:
    """A budget as int >= 1 (an int or its digits), or None for inf ("inf", None, float('inf'))."""
    if budget is None or budget == "inf" or (isinstance(budget, float) and budget == float("inf")):
        return None
    if isinstance(budget, str) and budget.strip().isdigit():
        budget = int(budget)
    if isinstance(budget, bool) or int(budget) != budget or int(budget) < 1:
        raise ValueError(f"a query budget is an integer >= 1 or inf, got {budget!r}")
    return int(budget)


class _Run:
    def __init__(self, reference, ask, budget, batched, n_noises, fixed=()):
        self.reference, self.ask, self.budget, self.batched = reference, ask, budget, batched
        self.result = AttackResult(success=False, queries=0, n_noises=n_noises, reference=reference, budget=budget,
                                   fixed=tuple(bool(f) for f in fixed))

    def left(self) -> int | None:
        return None if self.budget is None else self.budget - self.result.queries

    def _call(self, queries: list[Query]) -> list:
        labels = list(self.ask(list(queries)))
        if len(labels) != len(queries):
            raise ValueError(f"the query function answered {len(labels)} labels for {len(queries)} samples")
        self.result.calls.append(len(queries))
        self.result.computed += len(queries)
        return labels

    def _count(self, query: Query, label, phase: int, refine: bool) -> Step:
        step = Step(query, label, label != self.reference, phase, refine)
        self.result.steps.append(step)
        self.result.queries += 1
        return step

    def sweep(self, queries: list[Query], phase: int, refine: bool) -> tuple[Step | None, bool]:
        """Ask ``queries`` in order until one flips: (the flipping step or None, budget ran out)."""
        left = self.left()
        todo = queries if left is None else queries[: max(left, 0)]
        exhausted = len(todo) < len(queries)
        if not todo:
            return None, exhausted
        if self.batched:
            for query, label in zip(todo, self._call(todo)):
                step = self._count(query, label, phase, refine)
                if step.flipped:
                    return step, False  # the remaining answers of the batch are discarded
            return None, exhausted
        for query in todo:
            step = self._count(query, self._call([query])[0], phase, refine)
            if step.flipped:
                return step, False
        return None, exhausted


def algorithm1(
    n_noises: int,
    reference: Hashable,
    ask: Callable[[list[Query]], Sequence[Hashable]],
    budget: int | None = None,
    *,
    batched: bool = True,
    fixed: Sequence[bool] | None = None,
) -> AttackResult:
    """Run Algorithm 1 over ``n_noises`` noises; ``ask(queries) -> labels`` answers a list of queries.

    ``reference`` is the model's label for the clean utterance (not counted).  ``fixed[i]``: noise
    ``i`` has no strength knob (asked once, in the last phase, never refined).  See the module
    docstring for the exact order, counting and batching rules.
    """
    budget = check_budget(budget)
    fixed = tuple(bool(f) for f in fixed) if fixed is not None else (False,) * int(n_noises)
    if len(fixed) != int(n_noises):
        raise ValueError(f"fixed has {len(fixed)} entries for {n_noises} noises")
    run = _Run(reference, ask, budget, batched, int(n_noises), fixed)
    result = run.result
    last = len(PHASES)
    for phase, (level, refinement) in enumerate(PHASES, start=1):
        asked = [i for i in range(n_noises) if phase == last or not fixed[i]]
        hit, exhausted = run.sweep([Query(i, level) for i in asked], phase, False)
        if hit is None:
            if exhausted:
                return result  # failure: budget spent
            continue
        result.success = True
        result.noise, result.decrease, result.label = hit.query.noise, hit.query.decrease, hit.label
        result.queries_to_flip = result.queries
        if refinement and not fixed[hit.query.noise]:
            better, _ = run.sweep([Query(hit.query.noise, d) for d in refinement], phase, True)
            if better is not None:
                result.decrease, result.label = better.query.decrease, better.label
        return result
    return result  # failure: no noise flipped the label at any strength


def attack(
    noises: Sequence,
    query: Callable[[list], Sequence[Hashable]],
    budget: int | None = None,
    *,
    clean=None,
    reference: Hashable | None = None,
    batched: bool = True,
) -> AttackResult:
    """Algorithm 1 on audio: ``noises[i].perturb(d)`` gives the perturbed sample, ``query(samples) -> labels``.

    The reference is ``reference`` when given, else ``query([clean])`` (one uncounted call).
    """
    if reference is None:
        if clean is None:
            raise ValueError("give the clean sample or its reference label")
        reference = query([clean])[0]

    def ask(queries: list[Query]) -> list:
        return list(query([noises[q.noise].perturb(q.decrease) for q in queries]))

    return algorithm1(len(noises), reference, ask, budget, batched=batched,
                      fixed=[getattr(n, "fixed", False) for n in noises])


def derive(result: AttackResult, budget) -> AttackResult:
    """The result a run with the smaller ``budget`` gives, replayed from ``result``'s answers.

    Raises ValueError when ``budget`` exceeds the budget ``result`` ran with (its answers would
    not cover the queries), or when a needed answer is missing.
    """
    budget = check_budget(budget)
    if result.budget is not None and (budget is None or budget > result.budget):
        raise ValueError(f"cannot derive budget {budget or 'inf'} from a run with budget {result.budget}")
    answers = {s.query: s.label for s in result.steps}

    def replay(queries: list[Query]) -> list:
        try:
            return [answers[q] for q in queries]
        except KeyError as error:
            raise ValueError(f"query {error.args[0]} is not in the recorded run") from None

    derived = algorithm1(result.n_noises, result.reference, replay, budget, batched=False,
                         fixed=result.fixed or None)
    derived.calls, derived.computed = [], 0  # nothing was computed for it
    return derived
