"""Black-box noise attack (paper §7.5, Algorithm 1; SPEC §9) against small deterministic stub classifiers.

Stubs: an energy threshold (flips once enough noise is added), a classifier that flips only under
reverberation, and one that never flips.  Algorithm-level tests use "coded" noises whose perturbed
sample is ``[category code, decrease]``, so the stub sees exactly which query it answers.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from sernoise.attack.algorithm import PHASES, Query, algorithm1, attack, check_budget, derive
from sernoise.attack.knowledge import degradation_order, measure_degradation
from sernoise.attack.perturb import (
    AdditiveInstance,
    AttackNoiseError,
    FadeInstance,
    FixedInstance,
    ReverbInstance,
    StrengthInstance,
    attack_kind,
    draw_instance,
    search_knob,
)
from sernoise.attack import runner
from sernoise.attack.runner import AttackJob, noise_instances, run_job, run_jobs, select_utterances, usable_categories
from sernoise.attack.settings import AttackConfigError, resolve
from sernoise.attack.table5 import build_table5, plot_attack_budget, to_latex, to_markdown
from sernoise.alignments import Segment
from sernoise.conditions import build_condition
from sernoise.conditions.base import Condition, Context
from sernoise.conditions.snr import additive_snr, difference_snr
from sernoise.seeds import rng_for
from fixtures.tiny_wav2vec2 import tone_data

SR = 16000
CODES = {"nat": 1, "hum": 2, "int": 3, "fade": 4, "reverb": 5, "laugh": 6, "cry": 7}


# ----------------------------------------------------------------------------------- stubs


class CodedNoise:
    """A noise whose perturbed sample says what it is: [category code, decrease]."""

    def __init__(self, category):
        self.category = category

    def perturb(self, decrease):
        return np.array([CODES[self.category], decrease], dtype=float)


class Recorder:
    """Wraps a per-sample classifier; records every model call (batches) and sample."""

    def __init__(self, classify):
        self.classify, self.calls, self.samples = classify, [], []

    def __call__(self, batch):
        self.calls.append(len(batch))
        self.samples += [tuple(s) if len(s) == 2 else "audio" for s in batch]
        return [self.classify(s) for s in batch]


def never(sample) -> int:
    return 0


def reverb_only(min_decrease):
    return lambda s: int(s[0] == CODES["reverb"] and s[1] >= min_decrease)


def table_oracle(flips: set[tuple[int, int]]):
    """ask() of algorithm1: label 1 for the (noise, decrease) pairs in ``flips``, else 0 (the reference)."""
    return lambda queries: [int((q.noise, q.decrease) in flips) for q in queries]


class EnergyThreshold:
    """label 1 when the mean power exceeds ``threshold`` (noise adds power), else 0."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        return [int(np.mean(np.square(np.asarray(x, dtype=np.float64))) > self.threshold) for x in batch]


class FakePool:
    """A NoiseSource with white/tonal noise clips per category (deterministic)."""

    def __init__(self, categories=("nat", "hum", "int", "laugh", "cry"), seconds=(0.8, 3.0, 5.0)):
        rng = np.random.default_rng(7)
        self.clips = {}
        for category in categories:
            for i, s in enumerate(seconds):
                self.clips[f"{category}{i}"] = (0.1 * rng.standard_normal(int(s * SR))).astype(np.float32)

    def files(self, category):
        return sorted(k for k in self.clips if k.rstrip("0123456789") == category)

    def read(self, key):
        return self.clips[key]

    def draw(self, category, rng):
        keys = self.files(category)
        key = keys[int(rng.integers(len(keys)))]
        return key, self.clips[key]


def speech(seconds=2.5, seed=0) -> np.ndarray:
    """A voiced-like test signal (harmonics with a slow envelope), no leading silence."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    f0 = 120 + 60 * rng.random()
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.random()) / k for k in range(1, 6))
    return (0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.7 * t) ** 2)).astype(np.float32)


CONDITION_SPECS = {
    "env-nat-cont": {"type": "env", "category": "nat", "position": "cont", "snr_db": 20},
    "env-nat-start": {"type": "env", "category": "nat", "position": "start", "snr_db": 10},
    "env-hum-cont": {"type": "env", "category": "hum", "position": "cont", "snr_db": 20},
    "laugh": {"type": "insert", "category": "laugh"},
    "fade-in": {"type": "fade", "direction": "in"},
    "fade-out": {"type": "fade", "direction": "out"},
    "reverb": {"type": "reverb"},
}


def conditions(*ids, snr_reference=None):
    return [build_condition(c, CONDITION_SPECS[c], snr_reference=snr_reference) for c in ids]


# ------------------------------------------------------------------------- Algorithm 1: sequence

PHASE_LIST = [(i, level) for level in (1, 5, 10) for i in range(3)]


def test_never_flipping_model_gets_every_noise_at_1_5_10_db_then_failure():
    result = algorithm1(3, 0, table_oracle(set()), None)
    assert not result.success and result.noise is None and result.decrease is None
    assert result.sequence == PHASE_LIST
    assert result.queries == 9 and [s.phase for s in result.steps] == [1] * 3 + [2] * 3 + [3] * 3


def test_phase_two_flip_is_refined_over_2_to_4_db():
    # noise 1 flips from 3 dB on: 1 dB misses, 5 dB flips, refinement 2 (no), 3 (yes) -> stop
    flips = {(1, d) for d in range(3, 11)}
    result = algorithm1(3, 0, table_oracle(flips), None)
    assert result.sequence == [(0, 1), (1, 1), (2, 1), (0, 5), (1, 5), (1, 2), (1, 3)]
    assert result.success and result.noise == 1 and result.decrease == 3 and result.label == 1
    assert result.queries == 7 and result.queries_to_flip == 5
    assert [s.refine for s in result.steps] == [False] * 5 + [True] * 2


def test_phase_two_flip_without_lower_flip_reports_5_db_after_trying_2_3_4():
    flips = {(2, 5), (2, 10)}
    result = algorithm1(3, 0, table_oracle(flips), None)
    assert result.sequence == [(0, 1), (1, 1), (2, 1), (0, 5), (1, 5), (2, 5), (2, 2), (2, 3), (2, 4)]
    assert result.success and (result.noise, result.decrease, result.queries, result.queries_to_flip) == (2, 5, 9, 6)


def test_phase_three_flip_is_refined_over_6_to_9_db():
    flips = {(2, d) for d in (8, 9, 10)}
    result = algorithm1(3, 0, table_oracle(flips), None)
    assert result.sequence == PHASE_LIST + [(2, 6), (2, 7), (2, 8)]
    assert (result.noise, result.decrease, result.queries, result.queries_to_flip) == (2, 8, 12, 9)


def test_flip_at_1_db_is_not_refined():
    result = algorithm1(3, 0, table_oracle({(1, 1)}), None)
    assert result.sequence == [(0, 1), (1, 1)] and result.decrease == 1 and result.queries == 2


def test_budget_is_respected_to_the_query_batched_and_not():
    for k in range(1, 13):
        for batched in (True, False):
            result = algorithm1(3, 0, table_oracle(set()), k, batched=batched)
            assert result.queries == min(k, 9) == len(result.steps)
            assert result.computed <= k and sum(result.calls) == result.computed
            assert result.sequence == PHASE_LIST[: min(k, 9)] and not result.success


def test_refinement_is_cut_by_the_budget_but_stays_a_success():
    flips = {(1, d) for d in range(3, 11)}
    result = algorithm1(3, 0, table_oracle(flips), 6)
    assert result.sequence == [(0, 1), (1, 1), (2, 1), (0, 5), (1, 5), (1, 2)]
    assert result.success and result.decrease == 5 and result.queries == 6
    result = algorithm1(3, 0, table_oracle(flips), 4)  # the budget ends before the 5 dB flip
    assert not result.success and result.queries == 4


def test_batches_are_the_phase_lists_and_sweeps_truncated_to_the_budget():
    flips = {(1, d) for d in range(3, 11)}
    result = algorithm1(3, 0, table_oracle(flips), None, batched=True)
    assert result.calls == [3, 3, 3]  # phase 1, phase 2, refinement sweep 2-4
    assert result.computed == 9 and result.queries == 7  # (2, 5) and (1, 4) computed, not counted
    assert algorithm1(3, 0, table_oracle(flips), 5, batched=True).calls == [3, 2]
    assert algorithm1(3, 0, table_oracle(flips), None, batched=False).calls == [1] * 7


def test_reference_is_one_uncounted_call():
    model = Recorder(reverb_only(6))
    noises = [CodedNoise(c) for c in ("nat", "reverb", "cry")]
    result = attack(noises, model, 25, clean=np.zeros(100), batched=False)
    assert model.calls[0] == 1 and model.samples[0] == "audio"  # the clean reference
    assert result.queries == len(model.calls) - 1 and result.reference == 0
    assert result.success and noises[result.noise].category == "reverb" and result.decrease == 6
    assert result.sequence == PHASE_LIST[:8] + [(1, 6)]


def test_stub_that_flips_only_under_reverb():
    for order in itertools.permutations(["nat", "reverb", "hum"]):
        model = Recorder(reverb_only(2))
        noises = [CodedNoise(c) for c in order]
        result = attack(noises, model, None, reference=0)
        r = order.index("reverb")
        assert result.success and result.noise == r and result.decrease == 2
        assert result.sequence == [(i, 1) for i in range(3)] + [(i, 5) for i in range(r + 1)] + [(r, 2)]
        # the noise order decides what fits a budget of 5: reverb last needs 6 queries
        assert attack(noises, Recorder(reverb_only(2)), 5, reference=0).success == (r < 2)


def test_never_flipping_stub_fails_at_every_budget():
    noises = [CodedNoise(c) for c in CODES]
    for budget in (5, 15, 25, None):
        result = attack(noises, Recorder(never), budget, reference=0)
        assert not result.success and result.queries == (3 * len(CODES) if budget is None else min(budget, 21))


@pytest.mark.parametrize("seed", range(40))
def test_batched_equals_unbatched_and_derived_equals_direct(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    density = rng.choice([0.02, 0.1, 0.3])
    flips = {(i, d) for i in range(n) for d in range(1, 11) if rng.random() < density}
    inf_batched = algorithm1(n, 0, table_oracle(flips), None, batched=True)
    inf_plain = algorithm1(n, 0, table_oracle(flips), None, batched=False)
    assert inf_batched.outcome() == inf_plain.outcome()
    for budget in list(range(1, 3 * n + 6)) + [None]:
        direct = algorithm1(n, 0, table_oracle(flips), budget, batched=False)
        assert algorithm1(n, 0, table_oracle(flips), budget, batched=True).outcome() == direct.outcome()
        assert derive(inf_batched, budget).outcome() == direct.outcome(), (flips, budget)
        if budget is not None:
            assert direct.queries <= budget
            # success can only grow with the budget
            assert direct.success <= algorithm1(n, 0, table_oracle(flips), budget + 1).success


def test_derive_refuses_a_larger_budget_and_budget_names():
    result = algorithm1(3, 0, table_oracle(set()), 5)
    with pytest.raises(ValueError):
        derive(result, 6)
    with pytest.raises(ValueError):
        derive(result, None)
    assert check_budget("inf") is None and check_budget(None) is None and check_budget(5) == 5
    with pytest.raises(ValueError):
        check_budget(0)
    assert PHASES == ((1, ()), (5, (2, 3, 4)), (10, (6, 7, 8, 9)))


# ----------------------------------------------------------------------------- perturbations


@pytest.mark.parametrize("cid", ["env-nat-cont", "env-nat-start", "env-hum-cont", "laugh"])
def test_additive_perturbation_snr_is_start_snr_minus_decrease(cid):
    x = speech(seed=3)
    condition = conditions(cid)
    for run in range(3):
        instance, reasons = draw_instance("c", condition, x, Context("u", noise=FakePool()), rng_for(1, cid, run), 30.0)
        assert isinstance(instance, AdditiveInstance), reasons
        for d in range(1, 11):
            y = instance.perturb(d)
            assert y.dtype == np.float32 and y.shape == x.shape
            assert abs(additive_snr(x, y, instance.span) - (30.0 - d)) < 0.1
            level = instance.level(d)
            assert abs(level["snr_measured"] - (30 - d)) < 1e-3 and level["knob_name"] == "noise_gain"
        # stronger perturbation = larger gain, same noise (file and span)
        assert instance.level(10)["knob"] > instance.level(1)["knob"] > 0
        a, b = (instance.perturb(d).astype(np.float64) - x for d in (1, 9))
        assert np.corrcoef(a, b)[0, 1] > 0.999


@pytest.mark.parametrize("cid", ["fade-in", "fade-out", "reverb"])
def test_distortion_knob_is_searched_to_the_difference_snr(cid):
    if cid == "reverb":
        pytest.importorskip("shutil").which("sox") or pytest.skip("SoX not installed")
    x = speech(seconds=2.0, seed=5)
    instance, _ = draw_instance("c", conditions(cid), x, Context("u"), rng_for(2, cid), 30.0)
    assert isinstance(instance, ReverbInstance if cid == "reverb" else FadeInstance)
    knobs = []
    for d in range(1, 11):
        y = instance.perturb(d)
        assert y.shape == x.shape and abs(difference_snr(x, y) - (30.0 - d)) < 0.05
        knobs.append(instance.level(d)["knob"])
    assert knobs == sorted(knobs)  # a larger decrease needs a stronger knob
    evaluations = instance.evaluations
    instance.perturb(4)  # cached: no new search
    assert instance.evaluations == evaluations and evaluations <= 2 * 10


def test_search_knob_general_and_out_of_reach():
    measure = lambda y: float(y)  # noqa: E731  (the "audio" is the SNR itself)
    render = lambda u: 40.0 - 15.0 * math.tanh(u) - 2.0 * u  # noqa: E731  non-affine, decreasing
    found = search_knob(render, measure, 25.0, 0.0, (-5.0, 5.0))
    assert abs(found.snr - 25.0) <= 0.01 and found.evaluations < 15
    far = search_knob(render, measure, -100.0, 0.0, (-5.0, 5.0))
    assert far.knob == 5.0 and far.snr > -100.0


class CustomCondition(Condition):
    """A condition type the attack does not know how to scale (e.g. one from a plugin)."""

    type_name = "custom"


def test_every_built_in_condition_type_is_an_attack_noise_and_unknown_types_are_rejected():
    from sernoise.conditions.catalog import CONDITION_TYPES

    kinds = {name: attack_kind(type("C", (Condition,), {"type_name": name})("c")) for name in CONDITION_TYPES}
    assert kinds["env"] == kinds["insert"] == "additive" and kinds["reverb"] == "reverb" and kinds["fade"] == "fade"
    assert {kinds[t] for t in ("speed_segment", "speed_utterance", "pitch", "filler")} == {"strength"}
    assert kinds["drop_words"] == kinds["drop_letters"] == "fixed"
    with pytest.raises(AttackNoiseError, match="type custom"):
        attack_kind(CustomCondition("c"))


# --------------------------------------------------------- strength-scaled and fixed manipulations


def test_speed_segment_instance_scales_the_factor_and_keeps_the_drawn_segment():
    x = speech(seconds=3.0)
    cond = build_condition("speed-seg", {"type": "speed_segment", "factor": 1.25, "max_fraction": 0.25})
    instance, _ = draw_instance("speed_seg", [cond], x, Context("u"), rng_for(0, "s"), 30.0)
    assert isinstance(instance, StrengthInstance) and not instance.fixed
    full = cond(x, SR, rng_for(0, "s"), Context("u"))  # the same generator: the configured output
    np.testing.assert_array_equal(instance.perturb(10), full.audio)
    a, b = (round(full.params[k] * SR) for k in ("segment_start_s", "segment_end_s"))
    for d in (1, 5):
        y = instance.perturb(d)
        factor = 1.25 ** (d / 10)
        assert y.size == x.size - (b - a) + round((b - a) / factor)  # the same segment, a milder factor
        np.testing.assert_array_equal(y[:a], x[:a])
        level = instance.level(d)
        assert level["knob_name"] == "strength" and level["knob"] == pytest.approx(d / 10)
        assert math.isnan(level["snr_measured"]) and math.isnan(level["snr_target"])
    assert instance.perturb(1).size > instance.perturb(5).size > instance.perturb(10).size


def test_pitch_instance_is_milder_at_a_smaller_decrease():
    x = speech(seconds=1.5)
    cond = build_condition("pitch-up", {"type": "pitch", "factor": 1.25, "engine": "fast"})
    instance, _ = draw_instance("pitch", [cond], x, Context("u"), rng_for(0, "p"), 30.0)
    snrs = [instance.level(d)["snr_measured"] for d in (1, 5, 10)]
    assert all(instance.perturb(d).size == x.size for d in (1, 5, 10))
    assert snrs[0] > snrs[1] > snrs[2], snrs  # length kept: the difference SNR falls as the shift grows


class OneFiller:
    """A FillerSource with one 'uh'-like clip per speaker."""

    def __init__(self):
        t = np.arange(int(0.3 * SR)) / SR
        self.clip = (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)

    def fillers(self, speaker):
        return [("other_utt:uh", self.clip)]


WORDS = [Segment(0.0, 0.2, "<sil>", "<sil>"), Segment(0.2, 0.7, "KIDS", "kids"), Segment(0.8, 1.3, "ARE", "are"),
         Segment(1.4, 2.0, "TALKING", "talking"), Segment(2.0, 2.5, "<sil>", "<sil>")]


def test_filler_instance_quieter_and_shorter_pauses_at_lower_strength():
    x = speech(seconds=2.5)
    cond = build_condition("filler-long", {"type": "filler", "pause": "long", "pause_seconds": [0.5, 1.0]})
    context = Context("u", "S1", words=WORDS, fillers=OneFiller())
    instance, _ = draw_instance("filler", [cond], x, context, rng_for(0, "f"), 30.0)
    full = cond(x, SR, rng_for(0, "f"), context)
    np.testing.assert_array_equal(instance.perturb(10), full.audio)
    pause = full.params["pause_s"]
    half = instance.perturb(5)
    assert half.size == x.size + OneFiller().clip.size + 2 * round(pause / 2 * SR)
    at = round(full.params["insert_at_s"] * SR) + round(pause / 2 * SR)  # the filler starts after the pause
    inserted = half[at: at + OneFiller().clip.size]
    np.testing.assert_allclose(inserted, 0.5 * OneFiller().clip, rtol=1e-5, atol=1e-7)  # 20·log10(0.5) dB


def test_drop_word_is_one_fixed_query():
    x = speech(seconds=2.5)
    cond = build_condition("drop-word", {"type": "drop_words", "words": ["kids", "are", "talking"], "probability": 1.0})
    instance, _ = draw_instance("drop_word", [cond], x, Context("u", words=WORDS), rng_for(0, "d"), 30.0)
    assert isinstance(instance, FixedInstance) and instance.fixed
    assert instance.perturb(1) is instance.perturb(10) and instance.perturb(10).size < x.size
    assert instance.level(10)["knob_name"] == "fixed"


def test_fixed_noises_are_asked_once_in_the_last_phase_and_never_refined():
    fixed = [False, True, False]
    result = algorithm1(3, 0, table_oracle(set()), None, fixed=fixed)
    assert result.sequence == [(0, 1), (2, 1), (0, 5), (2, 5), (0, 10), (1, 10), (2, 10)] and not result.success
    hit = algorithm1(3, 0, table_oracle({(1, 10), (2, 10)}), None, fixed=fixed)
    assert hit.success and hit.noise == 1 and hit.decrease == 10 and hit.sequence[-1] == (1, 10)  # no 6-9 sweep
    assert derive(hit, 6).outcome() == algorithm1(3, 0, table_oracle({(1, 10), (2, 10)}), 6, fixed=fixed).outcome()
    with pytest.raises(ValueError, match="fixed has 2 entries"):
        algorithm1(3, 0, table_oracle(set()), None, fixed=[True, False])


def test_instance_skips_to_the_next_condition_and_reports():
    x = speech(seconds=3.0)
    x[: int(2.05 * SR)] = 1e-9  # (near) silent first 2 s: an onset noise of 1-2 s cannot be scaled there ...
    pool = FakePool()
    # ... when its speech level is the power under it (snr.reference: whole)
    instance, reasons = draw_instance("nat", conditions("env-nat-start", snr_reference="whole"), x,
                                      Context("u", noise=pool), rng_for(0), 30.0)
    assert instance is None and reasons
    instance, _ = draw_instance("nat", conditions("env-nat-start", "env-nat-cont", snr_reference="whole"), x,
                                Context("u", noise=pool), rng_for(0), 30.0)
    assert instance is not None and instance.condition == "env-nat-cont"
    # against the active level (default) the onset noise is defined over the silence too
    instance, _ = draw_instance("nat", conditions("env-nat-start"), x, Context("u", noise=pool), rng_for(0), 30.0)
    assert instance is not None and instance.condition == "env-nat-start"


# -------------------------------------------------------------------------- runs, order, knowledge


def make_job(categories=("nat", "hum", "fade", "laugh"), knowledge="none", budgets=(5, 15, 25, "inf"), **kwargs):
    by_category = {"nat": ["env-nat-cont", "env-nat-start"], "hum": ["env-hum-cont"], "fade": ["fade-in", "fade-out"],
                   "laugh": ["laugh"], "reverb": ["reverb"]}
    cats = {c: conditions(*by_category[c]) for c in categories}
    defaults = dict(noise_set="set", knowledge=knowledge, categories=cats, budgets=budgets, runs=3, start_snr=30.0,
                    seed=11, batched=True)
    defaults.update(kwargs)
    return AttackJob(**defaults)


def test_order_is_random_per_run_and_deterministic_per_seed():
    x, pool = speech(), FakePool()
    job = make_job()
    orders = []
    for run in range(1, 9):
        first, _ = noise_instances(job, "u1", x, "s", run, pool)
        again, _ = noise_instances(job, "u1", x, "s", run, pool)
        assert [i.category for i in first] == [i.category for i in again]
        assert [(i.condition, i.file, i.params) for i in first] == [(i.condition, i.file, i.params) for i in again]
        assert all(np.array_equal(a.perturb(3), b.perturb(3)) for a, b in zip(first, again))
        orders.append(tuple(i.category for i in first))
    assert len(set(orders)) > 1
    other_seed = [tuple(i.category for i in noise_instances(make_job(seed=12), "u1", x, "s", run, pool)[0])
                  for run in range(1, 9)]
    assert other_seed != orders


def test_knowledge_orders_categories_by_measured_degradation():
    x, pool = speech(), FakePool()
    order = ["laugh", "fade", "reverb", "nat", "hum"]  # reverb is not in this noise set
    job = make_job(knowledge="degradation", knowledge_order=order)
    for run in (1, 2, 3):
        instances, _ = noise_instances(job, "u1", x, "s", run, pool)
        assert [i.category for i in instances] == ["laugh", "fade", "nat", "hum"]
    frame = pd.DataFrame({"category": ["a", "b", "c", "d"], "uar_drop": [0.1, 0.3, float("nan"), 0.1]})
    assert degradation_order(frame) == ["b", "a", "d", "c"]
    with pytest.raises(ValueError):
        make_job(knowledge="degradation")


def test_instances_are_shared_between_noise_sets():
    x, pool = speech(), FakePool()
    a, _ = noise_instances(make_job(noise_set="all"), "u1", x, "s", 2, pool)
    b, _ = noise_instances(make_job(categories=("nat", "fade"), noise_set="retaining"), "u1", x, "s", 2, pool)
    by_a = {i.category: i for i in a}
    for instance in b:
        assert np.array_equal(instance.perturb(5), by_a[instance.category].perturb(5))


def energy_threshold_for(x, decrease_between=(7, 8), start_snr=10.0):
    """Between the powers of ``x`` plus noise at the two decreases (from a low start SNR, so that the
    noise-speech cross term, ~1/sqrt(n) of the noise, cannot blur 1 dB steps)."""
    p = float(np.mean(np.square(x.astype(np.float64))))
    d = sum(decrease_between) / 2
    return p * (1 + 10 ** (-(start_snr - d) / 10))


def test_energy_threshold_stub_flips_in_phase_three_at_8_db():
    x, pool = speech(seconds=2.0, seed=1), FakePool()
    model = EnergyThreshold(energy_threshold_for(x))
    job = make_job(categories=(), runs=2, start_snr=10.0)
    job.categories = {"nat": conditions("env-nat-cont"), "hum": conditions("env-hum-cont")}  # over the whole utterance
    frame = run_job(job, model, [("u1", x, "s1", 1)], noise=pool, meta={"model": "stub", "fold": 1, "rep": 1})
    inf = frame[frame["budget"] == "inf"]
    # both noises cover the utterance: 1 and 5 dB add too little energy, 10 dB flips, 8 dB is the least
    for row in inf.itertuples():
        assert row.success and row.decrease_db == 8 and row.category in ("nat", "hum") and row.queries == 4 + 3 + row.trace.count("@10")
        assert row.trace.split()[-1].startswith(f"{row.category}@8")
        assert abs(row.snr_measured - 2.0) < 0.1 and row.snr_target == 2.0
    assert set(frame.groupby("budget")["success"].mean().to_dict().values()) <= {0.0, 1.0}
    five = frame[frame["budget"] == "5"]  # query 5 is the first of phase 3: a flip, no budget left to refine
    assert five["success"].all() and (five["decrease_db"] == 10).all() and (five["queries"] == 5).all()
    assert not frame[frame["budget"] == "5"]["derived"].eq(False).any()


def test_job_rows_derived_from_the_largest_budget_equal_direct_runs():
    pool = FakePool()
    utts = [(f"u{i}", speech(seconds=1.5 + 0.3 * i, seed=i), "s", i % 3) for i in range(3)]
    threshold = energy_threshold_for(utts[0][1], (4, 5))
    job = make_job(budgets=(5, 15, 25, "inf"), start_snr=10.0)
    combined = run_job(job, EnergyThreshold(threshold), utts, noise=pool)
    assert len(combined) == 3 * 3 * 4 and set(combined["derived"]) == {True, False}
    keep = [c for c in combined.columns if c not in ("derived", "model_calls", "computed")]
    for budget in ("5", "15", "25", "inf"):
        for batched in (True, False):
            alone = run_job(make_job(budgets=(budget,), batched=batched, start_snr=10.0), EnergyThreshold(threshold),
                            utts, noise=pool)
            mine = combined[combined["budget"] == budget][keep].reset_index(drop=True)
            pd.testing.assert_frame_equal(mine, alone[keep].reset_index(drop=True), check_dtype=False)
    for _, rows in combined.groupby(["utt_id", "run"]):
        rows = rows.set_index("budget")
        assert list(rows.loc[["5", "15", "25"], "queries"] <= [5, 15, 25]) == [True] * 3
        assert rows.loc[["5", "15", "25", "inf"], "success"].is_monotonic_increasing  # success grows with the budget


def test_attacks_run_together_give_each_its_own_rows_and_draw_each_instance_once(monkeypatch):
    pool = FakePool()
    utts = [(f"u{i}", speech(seconds=1.5 + 0.3 * i, seed=i), "s", i % 3) for i in range(3)]
    threshold = energy_threshold_for(utts[0][1], (4, 5))
    order = ["laugh", "fade", "nat", "hum"]
    jobs = [make_job(noise_set="all", start_snr=10.0),
            make_job(noise_set="all", knowledge="degradation", knowledge_order=order, start_snr=10.0),
            make_job(categories=("nat", "fade"), noise_set="retaining", start_snr=10.0, batched=False)]
    metas = [{"model": "stub", "fold": 1, "rep": 1}] * len(jobs)
    drawn = []
    real_draw = runner.draw_instance

    def counting_draw(category, *args, **kwargs):
        drawn.append(category)
        return real_draw(category, *args, **kwargs)

    monkeypatch.setattr(runner, "draw_instance", counting_draw)
    predictor = EnergyThreshold(threshold)
    together, usage = run_jobs(jobs, predictor, utts, noise=pool, metas=metas)
    # each utterance's instances are drawn once for the three attacks: 3 utterances x 3 runs x 4 categories
    assert len(drawn) == 3 * 3 * 4
    # one reference call per chunk for all of them, the rest each attack's own
    assert predictor.calls == 1 + sum(u.calls for u in usage) and all(u.calls > 0 for u in usage)
    drawn.clear()
    for job, meta, frame in zip(jobs, metas, together):
        alone = run_job(job, EnergyThreshold(threshold), utts, noise=pool, meta=meta)
        pd.testing.assert_frame_equal(frame, alone)  # every column, model calls and computed samples included
    assert len(drawn) == 3 * 3 * (4 + 4 + 2)  # alone, each attack draws its own
    with pytest.raises(ValueError, match="3 attacks but 1 metas"):
        run_jobs(jobs, predictor, utts, noise=pool, metas=metas[:1])
    with pytest.raises(ValueError, match="3 attacks but 2 contexts"):
        run_jobs(jobs, predictor, utts, noise=pool, contexts=[None, None])


def test_select_utterances_is_a_seeded_sorted_subset():
    ids = [f"u{i:02d}" for i in range(20)]
    a = select_utterances(ids, 5, 1, "test", 1)
    assert a == sorted(a) and len(a) == 5 and a == select_utterances(list(reversed(ids)), 5, 1, "test", 1)
    assert select_utterances(ids, None, 1) == ids and select_utterances(ids, 50, 1) == ids


def test_usable_categories_leave_out_conditions_the_corpus_has_no_alignment_for():
    drop = build_condition("drop-word", {"type": "drop_words"})
    cats = {"drop_word": [drop], "nat": conditions("env-nat-cont")}
    usable, notes = usable_categories(cats, FakePool(), manifest=pd.DataFrame({"utt_id": ["a"], "alignment": [""]}))
    assert list(usable) == ["nat"] and any("drop-word left out" in n and "no alignments" in n for n in notes)
    usable, _ = usable_categories(cats, FakePool(), manifest=pd.DataFrame({"utt_id": ["a"], "alignment": ["a.wdseg"]}))
    assert list(usable) == ["drop_word", "nat"]


def test_usable_categories_leave_out_what_the_pool_lacks():
    pool = FakePool(categories=("nat", "hum"))
    wanted = {"nat": conditions("env-nat-cont"), "laugh": conditions("laugh"), "fade": conditions("fade-in")}
    usable, notes = usable_categories(wanted, pool)
    assert list(usable) == ["nat", "fade"] and any("laugh" in n for n in notes)


def test_attack_inputs_are_loaded_once_and_selected_per_step():
    """An attack job's steps share the predictor (their counts each start from zero), the pools and the
    conditions; each step takes its role's labelled utterances, its pool and what that pool can draw."""
    from sernoise.attack.inputs import AttackInputs
    from sernoise.attack.models import CountingPredictor

    class Constant(CountingPredictor):
        def features(self, audio):
            return np.zeros((1, 1), dtype=np.float32)

        def model_scores(self, features):
            return np.tile([1.0, 0.0, 0.0], (len(features), 1))

    utts = [f"u{i:02d}" for i in range(12)]
    manifest = pd.DataFrame({"utt_id": utts, "speaker": [f"s{i % 3}" for i in range(12)],
                             "group": [f"g{i % 3}" for i in range(12)]})
    folds = pd.DataFrame({"fold": [1, 1, 1], "role": ["train", "val", "test"], "group": ["g0", "g1", "g2"]})
    warnings = []
    built = conditions("env-nat-cont", "fade-in", "laugh")
    inputs = AttackInputs(
        fold="1", seed=3, manifest=manifest, folds=folds, labels={u: 0 for u in utts if u != "u01"},
        predictor=Constant(), store=None, conditions={c.id: c for c in built},
        category_conditions={"nat": ["env-nat-cont"], "fade": ["fade-in"], "laugh": ["laugh"]},
        log=type("Log", (), {"warning": staticmethod(warnings.append)})(),
        speakers=dict(zip(utts, manifest["speaker"])),
        pools={"train": FakePool(categories=("nat",)), "test": FakePool()})
    inputs.predictor([np.zeros(10)])

    val = inputs.step(role="val", limit=2, noise_pool="train", categories=["nat", "laugh"])
    assert val.candidates == ["u04", "u07", "u10"]  # group g1; u01 has no label for the task
    assert val.utts == select_utterances(val.candidates, 2, 3, "val", "1") and len(val.utts) == 2
    assert val.pool is inputs.pools["train"] and list(val.categories) == ["nat"]
    assert any("laugh" in w for w in warnings)  # no laugh in the train pool
    assert (val.predictor.calls, val.predictor.samples) == (0, 0)
    assert val.predictor.seconds == {"features": 0.0, "model": 0.0}
    val.predictor([np.zeros(10)] * 3)

    test = inputs.step(role="test", limit=None, noise_pool="test", categories=["laugh", "fade"])
    assert test.predictor is val.predictor and test.predictor.calls == 0
    assert test.candidates == test.utts == ["u02", "u05", "u08", "u11"]
    assert list(test.categories) == ["laugh", "fade"] and test.categories["laugh"][0] is built[2]
    assert test.pool is inputs.pools["test"] and test.context("u02", "s2").noise is test.pool
    inputs.release_pool("train")
    assert list(inputs.pools) == ["test"]


def test_measure_degradation_on_validation_utterances():
    pool = FakePool()
    utts = [(f"v{i}", speech(seconds=1.5, seed=i), "s") for i in range(6)]
    labels = {u: 0 for u, _, _ in utts}

    cats = {"nat": conditions("env-nat-cont"), "fade": conditions("fade-out")}

    class FadeDetector:  # the clean sample comes first in each batch: 0 there, 1 for a faded end
        def __call__(self, batch):
            ref = batch[0]
            return [0] + [int(np.allclose(b[:20], ref[:20], rtol=0, atol=1e-4) and np.sum(b[-4000:] ** 2) < 0.97 * np.sum(ref[-4000:] ** 2))
                          for b in batch[1:]]

    frame = measure_degradation(FadeDetector(), utts, labels, cats, noise=pool, seed=3,
                                perception={"nat": "retaining", "fade": "retaining"})
    assert list(frame["category"]) == ["fade", "nat"] and list(frame["rank"]) == [1, 2]
    fade = frame.set_index("category").loc["fade"]
    assert fade["uar_clean"] == 1.0 and fade["uar_noisy"] == 0.0 and fade["n_utterances"] == 6
    assert frame.set_index("category").loc["nat", "uar_drop"] == 0.0


# ---------------------------------------------------------------------------------- settings


def attack_section(**overrides):
    section = {"models": None, "regime": "clean", "tasks": None, "budgets": [5, 15, 25, "inf"],
               "noise_sets": {"all": "all", "perception_retaining": "retaining", "reverb": ["reverb"]},
               "knowledge": ["none", "degradation"], "runs": 5, "start_snr": 30, "max_utterances": None,
               "knowledge_utterances": None, "batch": True, "threads": 1,
               "categories": {"nat": ["env-nat-cont"], "fade": ["fade-in", "fade-out"], "reverb": ["reverb"],
                              "laugh": ["laugh"]}}
    section.update(overrides)
    return section


def test_settings_resolve_noise_sets_and_defaults():
    built = {c: build_condition(c, s) for c, s in CONDITION_SPECS.items()}
    config = {"training": {"models": ["tdnn", "ednn"], "tasks": ["activation"]}}
    settings = resolve(attack_section(), config, built, ["clean", "matched"])
    assert settings["noise_sets"] == {"all": ["nat", "fade", "reverb", "laugh"],
                                      "perception_retaining": ["nat", "fade", "reverb"], "reverb": ["reverb"]}
    assert settings["models"] == ["tdnn", "ednn"] and settings["tasks"] == ["activation"]
    assert settings["budgets"] == ["5", "15", "25", "inf"] and settings["perception"]["laugh"] == "altering"


def test_settings_environmental_and_signal_manipulation_sets_follow_the_condition_family():
    specs = {**CONDITION_SPECS, "speed-utt": {"type": "speed_utterance", "factor": 1.25},
             "drop-word": {"type": "drop_words"}}
    built = {c: build_condition(c, s) for c, s in specs.items()}
    categories = {"nat": ["env-nat-cont"], "hum": ["env-hum-cont"], "fade": ["fade-in"], "reverb": ["reverb"],
                  "speed_utt": ["speed-utt"], "drop_word": ["drop-word"], "laugh": ["laugh"]}
    sets = {"all": "all", "perception_retaining": "retaining", "environmental": "environmental",
            "signal_manipulation": "signal_manipulation", "reverb": ["reverb"]}
    settings = resolve(attack_section(categories=categories, noise_sets=sets),
                       {"training": {"models": ["tdnn"], "tasks": ["activation"]}}, built, ["clean"])
    assert settings["noise_sets"]["environmental"] == ["nat", "hum"]
    assert settings["noise_sets"]["signal_manipulation"] == ["fade", "reverb", "speed_utt", "drop_word", "laugh"]
    assert settings["noise_sets"]["perception_retaining"] == ["nat", "hum", "fade", "reverb", "drop_word"]
    assert settings["family"]["drop_word"] == "distortion"


def test_settings_models_are_the_trained_ones_with_a_predictor_in_the_attacked_regime():
    from sernoise.model_registry import registered_models
    from sernoise.regimes import Regime

    assert {m for m, f in registered_models().items() if f.attack} >= {"tdnn", "tdnn_nr", "ednn", "ednn_nr"}
    built = {c: build_condition(c, s) for c, s in CONDITION_SPECS.items()}
    regimes = {"clean": Regime("clean", "clean"), "matched": Regime("matched", "matched", ("reverb",))}
    training = {"models": ["ednn_nr", "tdnn", "ednn", "tdnn_nr"], "tasks": ["activation"]}
    assert resolve(attack_section(), {"training": training}, built, regimes)["models"] == training["models"]
    limited = dict(training, model_regimes={"ednn": ["matched"], "tdnn": ["clean", "matched"]})
    assert resolve(attack_section(), {"training": limited}, built, regimes)["models"] == ["ednn_nr", "tdnn", "tdnn_nr"]
    assert resolve(attack_section(regime="matched"), {"training": limited}, built, regimes)["models"] == \
        training["models"]
    with pytest.raises(AttackConfigError, match=r"attack.models\[0\]: model 'ednn' is not trained in regime 'clean'"):
        resolve(attack_section(models=["ednn"]), {"training": limited}, built, regimes)


def test_settings_errors_name_the_key():
    built = {c: build_condition(c, s) for c, s in {**CONDITION_SPECS, "pitch-up": {"type": "pitch", "factor": 1.25}}.items()}
    config = {"training": {"models": ["tdnn"], "tasks": ["activation"]}}
    built["custom"] = CustomCondition("custom")
    bad = attack_section(models=["ednn"], tasks=["valence"], regime="matched", budgets=[5, 5],
                         noise_sets={"x": ["nosuch"]},
                         categories={"nat": ["env-nat-cont", "nosuch"], "p": ["custom"], "mix": ["reverb", "laugh"],
                                     "fam": ["reverb", "env-hum-cont"]})
    with pytest.raises(AttackConfigError) as error:
        resolve(bad, config, built, ["clean"])
    text = str(error.value)
    assert "attack.categories.fam: conditions of one category must share a family" in text
    for key in ("attack.categories.nat[1]", "attack.categories.p[0]", "attack.categories.mix", "attack.noise_sets.x[0]",
                "attack.models[0]", "attack.tasks[0]", "attack.regime", "attack.budgets[1]"):
        assert key in text, key


# ------------------------------------------------------------------------------------ Table 5


def synthetic_results(seed=0, folds=3, reps=2, utts=8, runs=3):
    rng = np.random.default_rng(seed)
    rows = []
    rates = {"all": 0.9, "perception_retaining": 0.2, "reverb": 0.5}
    for knowledge, noise_set, fold, rep, u, run in itertools.product(["none", "degradation"], rates, range(1, folds + 1),
                                                                    range(1, reps + 1), range(utts), range(1, runs + 1)):
        first = rng.random() < rates[noise_set] + (0.05 if knowledge == "degradation" else 0)
        q = int(rng.integers(1, 30))
        for budget in ("5", "15", "25", "inf"):
            ok = first and q <= (math.inf if budget == "inf" else int(budget))
            rows.append({"model": "tdnn", "task": "activation", "knowledge": knowledge, "noise_set": noise_set,
                         "budget": budget, "fold": fold, "rep": rep, "utt_id": f"f{fold}u{u}", "run": run,
                         "success": ok, "queries": q, "decrease_db": 5.0 if ok else float("nan")})
    return pd.DataFrame(rows)


TABLE_SETTINGS = {"models": ["tdnn"], "tasks": ["activation"], "knowledge": ["none", "degradation"],
                  "noise_sets": {"all": [], "perception_retaining": [], "reverb": []},
                  "noise_set_specs": {"all": "all", "perception_retaining": "retaining", "reverb": "list"},
                  "budgets": ["5", "15", "25", "inf"]}


def test_table5_cells_tests_and_layout(tmp_path):
    results = synthetic_results()
    table = build_table5(results, TABLE_SETTINGS, corpus="ravdess")
    cells = table.cells
    assert len(cells) == 2 * 3 * 4 and table.m == 2 * 4
    # the mean over (fold, rep) of per-pair means of per-utterance run means
    sel = results[(results.knowledge == "none") & (results.noise_set == "all") & (results.budget == "inf")]
    per_utt = sel.groupby(["fold", "rep", "utt_id"])["success"].mean()
    expected = per_utt.groupby(level=["fold", "rep"]).mean().mean()
    cell = cells[(cells.knowledge == "none") & (cells.noise_set == "all") & (cells.budget == "inf")].iloc[0]
    assert cell["mean"] == pytest.approx(expected) and cell["n_pairs"] == 6 and cell["n_utterances"] == 48
    assert cell["significant"] and cell["value"].endswith("↑") and cell["direction"] == "up"
    assert cells[cells.noise_set != "all"]["comparison"].eq("").all()
    budgets = cells[(cells.knowledge == "none") & (cells.noise_set == "all")].sort_values("row_order")
    assert list(budgets["budget"]) == ["5", "15", "25", "inf"] and budgets["mean"].is_monotonic_increasing
    md = to_markdown(table)
    assert "All noises**" in md and "Performance impact per noise is known" in md and "| Activation |" in md
    assert "\\begin{tabular}" in to_latex(table) and "All noises**" in to_latex(table)
    plot_attack_budget(table, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_table5_with_missing_cells_says_so():
    results = synthetic_results()
    results = results[results.noise_set != "reverb"]
    table = build_table5(results, TABLE_SETTINGS)
    assert (table.cells[table.cells.noise_set == "reverb"]["value"] == "–").all() and table.notes


def test_table5_marks_cells_of_flagged_attacked_models():
    results = synthetic_results()
    plain = build_table5(results, TABLE_SETTINGS)
    fold, rep = results[["fold", "rep"]].iloc[0]
    task = TABLE_SETTINGS["tasks"][0]
    flagged = {("tdnn", "clean", int(fold), int(rep), task): "all validation predictions are 'mid'",
               ("tdnn", "matched", int(fold), int(rep), task): "not the attacked regime"}
    table = build_table5(results, TABLE_SETTINGS, flagged=flagged)
    marked = table.cells["value"].str.endswith("†") & table.cells["n_pairs"].gt(0)
    assert marked.sum() == (plain.cells["n_pairs"] > 0).sum()  # every cell pools that (fold, rep)
    assert table.cells.loc[marked, "note"].str.contains("all validation predictions are 'mid'").all()
    assert not table.cells["note"].str.contains("not the attacked regime").any()
    assert any(n.startswith("†:") for n in table.notes) and r"\dag{}" in to_latex(table)


def test_table5_labels_a_stand_in_backbone():
    results = synthetic_results()
    results = pd.concat([results, results.assign(model="ednn")], ignore_index=True)
    label = "E-DNN (tiny random wav2vec2)"
    note = f"{label}: a tiny randomly initialised wav2vec2 stands in for facebook/wav2vec2-base."
    table = build_table5(results, dict(TABLE_SETTINGS, models=["tdnn", "ednn"]), model_labels={"ednn": label},
                         model_notes=[note, "E-DNN-NR (tiny random wav2vec2): not attacked here"])
    assert set(table.cells.loc[table.cells.model == "ednn", "model_label"]) == {label}
    assert set(table.cells.loc[table.cells.model == "tdnn", "model_label"]) == {"T-DNN"}
    md = to_markdown(table)
    assert f"| {label} |" in md and md.splitlines()[0].endswith(note) and "E-DNN-NR" not in md
    assert label in to_latex(table)


def test_query_objects_are_hashable_and_ordered_by_phase():
    assert Query(1, 5) == Query(1, 5) and len({Query(1, 5), Query(1, 5)}) == 1


# --------------------------------------------------------------------------- E-DNN predictor


@pytest.fixture(scope="module")
def ednn_folder(tiny, tmp_path_factory):  # noqa: F811
    """An E-DNN model folder as train_audio_model writes it (model.pt, hparams.yaml naming the backbone and its
    fingerprint), on the tiny random wav2vec2 of tests/test_ednn.py."""
    import torch
    import yaml

    from sernoise.models.ednn import EDNN, EDNNConfig
    from sernoise.pretrained import backbone_fingerprint
    from sernoise.training.ednn import save_trainable

    folder = tmp_path_factory.mktemp("ednn_model")
    config = EDNNConfig(dense_units=8)
    torch.manual_seed(3)
    save_trainable(EDNN(config, tiny).trainable_state(), folder / "model.pt")
    hparams = {"hparams": config.as_dict(), "training": {"eval_batch_size": 4, "amp": True},
               "backbone": {"folder": str(tiny), "fingerprint": backbone_fingerprint(tiny)}}
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    return folder


@pytest.mark.parametrize("family", ["ednn", "ednn_nr"])
def test_ednn_predictor_answers_labels_and_counts_queries(ednn_folder, family):
    from sernoise.attack.models import EdnnAttackPredictor, load_predictor, model_files
    from sernoise.training.ednn import predict_proba

    assert all((ednn_folder / name).is_file() for name in model_files(family))
    predictor = load_predictor(family, ednn_folder)
    assert isinstance(predictor, EdnnAttackPredictor)
    batch = tone_data(6).arrays + [speech(1.0, seed=2)] * 2  # lengths differ, two equal
    labels = predictor(batch)
    assert labels.shape == (8,) and set(labels.tolist()) <= {0, 1, 2}
    assert predictor.calls == 1 and predictor.samples == 8
    assert set(predictor.seconds) == {"features", "model"} and predictor.seconds["model"] > 0
    # a sample's label does not depend on its batch, and is the model's argmax
    alone = [int(predictor([x])[0]) for x in batch]
    assert labels.tolist() == alone and predictor.calls == 9 and predictor.samples == 16
    model = predictor.inner.model
    assert alone == [int(predict_proba(model, [x]).argmax(axis=1)[0]) for x in batch]
    assert predictor([]).shape == (0,) and predictor.calls == 9


def test_algorithm1_against_the_ednn_respects_the_budget(ednn_folder):
    from sernoise.attack.models import load_predictor

    predictor = load_predictor("ednn", ednn_folder)
    x, pool = speech(seconds=1.5), FakePool()
    job = make_job(categories=("nat", "hum", "fade", "laugh"), runs=1)
    noises, _ = noise_instances(job, "u1", x, "s", 1, pool)
    for budget in (1, 4, 9, None):
        for batched in (True, False):
            calls, samples = predictor.calls, predictor.samples
            result = attack(noises, predictor, budget, clean=x, batched=batched)
            assert result.queries <= (budget or math.inf) and len(result.steps) == result.queries
            assert predictor.calls - calls == 1 + len(result.calls)  # the uncounted reference, then the queries
            assert predictor.samples - samples == 1 + result.computed
            if budget is not None:
                assert result.computed <= budget
            assert result.success == (result.label is not None and result.label != result.reference)
    utts = [(f"u{i}", speech(seconds=1.0 + 0.25 * i, seed=i), "s", i % 3) for i in range(2)]
    frame = run_job(make_job(budgets=(3, 10), runs=2), predictor, utts, noise=pool,
                    meta={"model": "ednn", "fold": 1, "rep": 1})
    assert len(frame) == 2 * 2 * 2
    for budget in ("3", "10"):
        assert (frame.loc[frame["budget"] == budget, "queries"] <= int(budget)).all()


def test_rule_inputs_context_carries_the_stored_speech_level(tmp_path):
    """The attack's conditions get the clean shard's stored P.56 level (no P.56 per draw)."""
    from sernoise.attack.inputs import RuleInputs
    from sernoise.audio_store import AudioStore, ShardWriter
    from sernoise.conditions.active_level import active_speech_power

    x = (0.2 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)).astype(np.float32)
    for name, levels in (("levels", True), ("plain", False)):
        with ShardWriter(tmp_path / f"{name}.h5", speech_levels=levels) as writer:
            writer.add("u0", x)
    for name in ("levels", "plain"):
        store = AudioStore([tmp_path / f"{name}.h5"])
        expected = active_speech_power(store.read("u0"), 16000) if name == "levels" else None  # of the stored audio
        inputs = RuleInputs(labels={"u0": 0}, candidates=["u0"], utts=["u0"], pool=None, categories={},
                            predictor=None, store=store, speakers={"u0": "s"})
        context = inputs.context("u0", "s")
        assert context.active_power == expected and context.utt_id == "u0"
