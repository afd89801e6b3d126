"""MetricAug library (Wu & Lee): level quantisers, Algorithm 1, the per-epoch draw, CopyPaste,
noisy items, the head model and the ``metricaug`` strategy hook, on hand-worked cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sernoise.metricaug.copypaste import CopyPasteError, paste, plan_copypaste
from sernoise.metricaug.levels import LevelError, gmm_levels, quantise, uniform_levels
from sernoise.metricaug.weights import WeightError, draw_items, level_counts, level_weights
from sernoise.seeds import rng_for

# ------------------------------------------------------------------------------ Algorithm 1


def test_weights_floor_cascades_until_every_weight_is_at_least_the_floor():
    # normalised gaps 0, .05, .10, .35, .50: level 1 is floored (0 < .05); sharing M' = .95 over the
    # other four (gaps sum .20) gives level 2 .01/.20*.95 = .0475 < .05, so it is floored too;
    # then M' = .90 is shared over gaps .02, .07, .10 (sum .19).
    w = level_weights([0.0, 0.01, 0.02, 0.07, 0.10])
    expected = [0.05, 0.05, 0.02 / 0.19 * 0.90, 0.07 / 0.19 * 0.90, 0.10 / 0.19 * 0.90]
    assert w == pytest.approx(expected, abs=1e-12)
    assert w.sum() == pytest.approx(1.0)


def test_weights_without_floored_level_are_the_normalised_gaps():
    assert level_weights([0.1, 0.2, 0.3, 0.2, 0.2]) == pytest.approx([0.1, 0.2, 0.3, 0.2, 0.2])


def test_negative_gap_counts_as_the_floor_and_leaves_the_normalisation():
    # level 1 better than clean: floored; the other four share .95 by their gaps (sum 1.0)
    w = level_weights([-0.1, 0.1, 0.2, 0.3, 0.4])
    assert w == pytest.approx([0.05, 0.095, 0.19, 0.285, 0.38], abs=1e-12)


def test_all_gaps_below_the_floor_or_negative_give_uniform_weights():
    assert level_weights([-0.1, -0.2, 0.0, 0.0, -0.01]) == pytest.approx([0.2] * 5)
    assert level_weights([0.0] * 5) == pytest.approx([0.2] * 5)


def test_tiny_equal_gaps_are_uniform_and_one_dominant_gap_leaves_the_floor_elsewhere():
    assert level_weights([0.001] * 5) == pytest.approx([0.2] * 5)
    assert level_weights([0.001, 0.0, 0.0, 0.0, 0.5]) == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.8])


def test_weights_reject_bad_input():
    with pytest.raises(WeightError, match="finite"):
        level_weights([0.1, math.nan])
    with pytest.raises(WeightError, match="floor"):
        level_weights([0.1, 0.2], floor=0.6)


# ------------------------------------------------------------------------------ the draw


def test_level_counts_round_by_largest_remainder_and_sum_to_n():
    # 0.1*10=1, 0.0947*10=.947, 3.316, 4.737 -> floors 1,0,3,4 (8); the two largest remainders
    # (.947 level 2, .737 level 4) take the missing two
    assert level_counts([0.1, 0.0947368, 0.3315789, 0.4736843], 10).tolist() == [1, 1, 3, 5]
    assert level_counts([0.2] * 5, 7).tolist() == [2, 2, 1, 1, 1]  # ties: lower levels first
    for n in (0, 1, 13, 100):
        assert level_counts(level_weights([0.0, 0.01, 0.02, 0.07, 0.10]), n).sum() == n
    with pytest.raises(WeightError, match="sum to 1"):
        level_counts([0.5, 0.4], 10)


def test_draw_takes_the_counts_from_each_level_and_is_deterministic():
    item_levels = np.array([1, 2, 3, 4, 5] * 20 + [0] * 7)  # 20 items per level, 7 undefined
    weights = [0.05, 0.05, 0.1, 0.3, 0.5]
    drawn, counts = draw_items(item_levels, weights, 40, rng_for(1, "fold1", "rep1", 3))
    assert counts.tolist() == [2, 2, 4, 12, 20]
    assert np.bincount(item_levels[drawn], minlength=6).tolist() == [0, 2, 2, 4, 12, 20]
    assert len(set(drawn.tolist())) == 40  # enough items per level: no repeats
    again, _ = draw_items(item_levels, weights, 40, rng_for(1, "fold1", "rep1", 3))
    other, _ = draw_items(item_levels, weights, 40, rng_for(1, "fold1", "rep1", 4))
    assert drawn.tolist() == again.tolist()
    assert drawn.tolist() != other.tolist()


def test_draw_repeats_items_of_a_small_level_and_skips_an_empty_one():
    item_levels = np.array([1, 1, 2, 2, 2, 2, 2, 2, 2, 2])  # level 3 is empty
    drawn, counts = draw_items(item_levels, [0.5, 0.25, 0.25], 8, rng_for(0, "x"))
    # level 3's share goes to levels 1 and 2 in proportion (2/3, 1/3)
    assert counts.tolist() == [5, 3, 0]
    level1 = drawn[item_levels[drawn] == 1]
    assert sorted(set(level1.tolist())) == [0, 1] and len(level1) == 5  # both items, chained permutations


# ------------------------------------------------------------------------------ levels


def test_uniform_levels_split_by_equal_counts_highest_values_first():
    values = [0.9, 0.1, 0.5, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6, 1.0, math.nan]
    levels = uniform_levels(values, "stoi", 5)
    # sorted high -> low: 1.0 .9 | .8 .7 | .6 .5 | .4 .3 | .2 .1
    assert levels.item_levels.tolist() == [1, 5, 3, 2, 4, 5, 2, 4, 3, 1, 0]
    assert levels.counts == [2] * 5 and levels.undefined == 1
    assert levels.edges == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.1])
    assert uniform_levels(list(range(7)), "pesq", 3).counts == [3, 2, 2]


def test_gmm_levels_find_separated_clusters_ordered_by_decreasing_mean(tmp_path):
    rng = np.random.default_rng(0)
    centres = [0.2, 1.5, 2.5, 3.5, 4.4]  # PESQ-like
    sizes = [30, 20, 25, 15, 10]
    values = np.concatenate([c + 0.02 * rng.standard_normal(s) for c, s in zip(centres, sizes)])
    levels = gmm_levels(values, "pesq", 5, seed=7)
    assert levels.counts == sizes[::-1]  # level 1 = the highest cluster (4.4, 10 items)
    assert levels.means == pytest.approx(centres[::-1], abs=0.02)
    assert levels.item_levels[:30].tolist() == [5] * 30
    again = quantise(values, "pesq", "gmm", 5, seed=7)
    assert again.item_levels.tolist() == levels.item_levels.tolist()
    levels.save(tmp_path / "levels.json")
    saved = json.loads((tmp_path / "levels.json").read_text())
    assert saved["counts"] == sizes[::-1] and saved["method"] == "gmm" and "item_levels" not in saved


def test_level_errors_name_the_metric():
    with pytest.raises(LevelError, match="'stoi'.*cannot fill 5"):
        uniform_levels([0.1, 0.2, math.nan], "stoi", 5)
    with pytest.raises(LevelError, match="'pesq'.*distinct"):
        gmm_levels([1.0] * 10 + [2.0] * 10, "pesq", 5)
    with pytest.raises(LevelError, match="unknown level method 'kmeans'"):
        quantise([1, 2, 3], "stoi", "kmeans", 2)


# ------------------------------------------------------------------------------ CopyPaste


def _corpus():
    labels = ["neutral"] * 4 + ["angry"] * 3 + ["sad"] * 3 + ["happy"] * 2
    lengths = [16000 * s for s in (3, 5, 2, 4, 6, 3, 3, 2, 4, 7, 3, 3)]
    return [f"u{i:02d}" for i in range(len(labels))], labels, lengths


def test_copypaste_count_labels_and_four_second_parts():
    ids, labels, lengths = _corpus()
    label_of = dict(zip(ids, labels))
    items = plan_copypaste(ids, labels, lengths, rng_for(3, "copypaste"))
    assert len(items) == round(0.8 * len(ids)) == 10
    assert [it.scheme for it in items].count("neutral") == 5
    for it in items:
        for (start, stop), utt in zip(it.windows, it.parts):
            assert 0 <= start < stop <= lengths[ids.index(utt)]
            assert stop - start <= 4 * 16000
        part_labels = [label_of[p] for p in it.parts]
        if it.scheme == "neutral":
            assert sorted(part_labels, key=lambda lab: lab != "neutral")[0] == "neutral"
            emotional = [lab for lab in part_labels if lab != "neutral"]
            assert len(emotional) == 1 and it.label == emotional[0]
        else:
            assert part_labels[0] == part_labels[1] == it.label and it.parts[0] != it.parts[1]
    again = plan_copypaste(ids, labels, lengths, rng_for(3, "copypaste"))
    assert again == items


def test_copypaste_crops_long_parts_and_pastes_the_windows():
    ids, labels = ["n", "a"], ["neutral", "angry"]
    audio = {"n": np.arange(6 * 16000, dtype=np.float32), "a": -np.arange(2 * 16000, dtype=np.float32)}
    items = plan_copypaste(ids, labels, [audio["n"].size, audio["a"].size], rng_for(0, "cp"), fraction=0.5)
    assert len(items) == 1 and items[0].label == "angry"
    y = paste(items[0], audio)
    assert y.size == 4 * 16000 + 2 * 16000
    (s0, e0), (s1, e1) = items[0].windows
    first = items[0].parts[0]
    assert np.array_equal(y[: e0 - s0], audio[first][s0:e0])


def test_copypaste_without_neutral_utterances_fails_clearly():
    with pytest.raises(CopyPasteError, match="neutral scheme"):
        plan_copypaste(["a", "b"], ["angry", "angry"], [16000, 16000], rng_for(0, "cp"))
