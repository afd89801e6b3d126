"""Unit tests of sernoise.augment (one condition over one shard), .augmented_io (params, status,
merging), .quality (PESQ) and .gallery."""

from __future__ import annotations

import filecmp
import json
import math

import numpy as np
import pandas as pd
import pytest

from sernoise.alignments import Segment, write_sphinx_seg
from sernoise.audio_store import AudioShard, AudioStore, ShardWriter
from sernoise.augment import augment_shard, unmet_requirement, utterance_seed
from sernoise.augmented_io import PARAM_COLUMNS, load_params, merge_augmented, read_params, reason_kind
from sernoise.gallery import gallery_utterance, plot_gallery
from sernoise.quality import measure_pesq
from sernoise.conditions import build_condition
from sernoise.conditions.base import Condition, Result, SkipUtterance
from sernoise.corpora.manifest import MANIFEST_COLUMNS
from sernoise.seeds import derive_seed

SR = 16000
SEED = 1234


def _speechlike(seed: int, seconds: float) -> np.ndarray:
    """A voiced-like signal with syllable envelopes (PESQ needs something that looks like speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 120 + 40 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    x = 0.2 * voiced * envelope + 0.003 * rng.standard_normal(t.size)
    return (x / np.max(np.abs(x)) * 0.5).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    """Five utterances in one shard, and their manifest rows (no alignments)."""
    rows = []
    with ShardWriter(tmp_path / "clean.h5") as writer:
        for i in range(5):
            utt_id = f"u{i}"
            writer.add(utt_id, _speechlike(i, 1.0 + 0.25 * i))
            rows.append({c: "" for c in MANIFEST_COLUMNS} | {"utt_id": utt_id, "speaker": f"s{i % 2}"})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS), AudioStore([tmp_path / "clean.h5"])


class FakeNoise:
    """A NoiseSource with one white-noise file per category."""

    def files(self, category):
        return [f"fake:{category}.wav"]

    def read(self, key):
        return (0.1 * np.random.default_rng(len(key)).standard_normal(3 * SR)).astype(np.float32)

    def draw(self, category, rng):
        key = self.files(category)[0]
        return key, self.read(key)


class OddOnes(Condition):
    """Test-only: skips odd utterances, shortens the others by 10 %, records what it was told."""

    type_name = "test_odd"

    def apply(self, x, sr, rng, context):
        if int(context.utt_id[1:]) % 2:
            raise SkipUtterance("odd utterance")
        draw = float(rng.random())
        return Result(x[: int(x.size * 0.9)].copy(), {"draw": draw, "speaker": context.speaker, "pair": (1, 2)})


class NeedsWords(Condition):
    """Test-only: needs alignments; records how many words it was given."""

    type_name = "test_words"
    requires = frozenset({"alignment"})

    def apply(self, x, sr, rng, context):
        return Result(x * 0.5, {"n_words": len(context.words), "n_phones": len(context.phones)})


def _run(condition, corpus, out, pool="test", **kwargs):
    rows, store = corpus
    out.mkdir(parents=True, exist_ok=True)
    status = augment_shard(condition, rows, store, pool=pool, global_seed=SEED, out_shard=out / "shard-000.h5",
                           out_params=out / "params-000.csv", out_status=out / "status-000.json",
                           progress=False, **kwargs)
    return status, load_params(out / "params-000.csv")


def test_params_columns_seeds_and_quality(corpus, tmp_path):
    fade = build_condition("fade-in", {"type": "fade", "direction": "in", "rate_per_second": 0.02})
    status, params = _run(fade, corpus, tmp_path / "test")
    assert list(params.columns[: len(PARAM_COLUMNS)]) == PARAM_COLUMNS
    assert all(c.startswith("p_") for c in params.columns[len(PARAM_COLUMNS):]) and len(params.columns) > len(PARAM_COLUMNS)
    assert list(params["utt_id"]) == [f"u{i}" for i in range(5)]
    assert (params["status"] == "ok").all()
    assert list(params["seed"].astype(int)) == [derive_seed(SEED, "augment", "fade-in", "test", f"u{i}") for i in range(5)]
    assert utterance_seed(SEED, "fade-in", "test", "u0") == int(params["seed"][0])
    assert set(params["family"]) == {"distortion"} and set(params["perception"]) == {"retaining"}
    assert params["snr_target"].isna().all()  # fades ask for no SNR ...
    assert params["snr_measured"].between(10, 80).all()  # ... but the difference-signal SNR is measured
    assert params["stoi"].between(0.5, 1.0).all()
    assert params["pesq"].between(1.0, 4.7).all()
    assert np.allclose(params["duration_in"], [1.0 + 0.25 * i for i in range(5)])
    assert status == {**status, "skipped": False, "n_ok": 5, "n_skipped": 0, "condition": "fade-in", "pool": "test"}
    assert json.loads((tmp_path / "test/status-000.json").read_text()) == status
    assert AudioShard(tmp_path / "test/shard-000.h5").utt_ids == [f"u{i}" for i in range(5)]

    # The train pool (quality configured for test only): no STOI/PESQ, and other seeds.
    _, train = _run(fade, corpus, tmp_path / "train", pool="train")
    assert train["stoi"].isna().all() and train["pesq"].isna().all()
    assert not set(train["seed"]) & set(params["seed"])


def test_same_inputs_give_identical_bytes(corpus, tmp_path):
    env = build_condition("env-nat-cont-snr10", {"type": "env", "category": "nat", "position": "cont", "snr_db": 10})
    for name in ("a", "b"):
        _run(env, corpus, tmp_path / name, noise=FakeNoise())
    for name in ("shard-000.h5", "params-000.csv", "status-000.json"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name


def test_additive_snr_is_measured_on_the_stored_audio(corpus, tmp_path):
    env = build_condition("env-nat-cont-snr10", {"type": "env", "category": "nat", "position": "cont", "snr_db": 10})
    _, params = _run(env, corpus, tmp_path, noise=FakeNoise())
    assert (params["snr_target"] == 10).all()
    assert (params["snr_measured"] - 10).abs().max() < 0.1  # SPEC §11
    assert set(params["family"]) == {"environmental"}
    assert "p_noise_file" in params.columns
    # Re-measure from the shard: the recorded value is what a reader of the dataset gets.
    rows, store = corpus
    from sernoise.conditions.snr import additive_snr

    y = AudioShard(tmp_path / "shard-000.h5").read("u2")
    assert additive_snr(store.read("u2"), y) == pytest.approx(params.loc[2, "snr_measured"], abs=1e-9)


def test_skipped_utterances_and_length_changes(corpus, tmp_path):
    status, params = _run(OddOnes("odd"), corpus, tmp_path)
    assert list(params["status"]) == ["ok", "skipped: odd utterance", "ok", "skipped: odd utterance", "ok"]
    assert status["n_ok"] == 3 and status["n_skipped"] == 2 and status["skip_reasons"] == {"odd utterance": 2}
    assert AudioShard(tmp_path / "shard-000.h5").utt_ids == ["u0", "u2", "u4"]
    ok = params[params["status"] == "ok"]
    # Length changed: no difference-signal SNR, no STOI/PESQ.
    assert ok["snr_measured"].isna().all() and ok["stoi"].isna().all() and ok["pesq"].isna().all()
    assert np.allclose(ok["duration_out"], ok["duration_in"] * 0.9, atol=1 / SR)
    assert list(ok["p_speaker"]) == ["s0", "s0", "s0"]
    assert list(ok["p_pair"]) == ["[1,2]"] * 3
    skipped = params[params["status"] != "ok"]
    assert skipped["duration_out"].isna().all() and skipped["p_draw"].isna().all()


def test_corpus_without_alignments_skips_the_condition(corpus, tmp_path):
    drop = build_condition("drop-word", {"type": "drop_words"})
    status, params = _run(drop, corpus, tmp_path)
    assert status["skipped"] is True and status["n_ok"] == 0 and status["n_skipped"] == 5
    assert "alignment" in status["reason"]
    assert params.empty and list(params.columns) == PARAM_COLUMNS
    assert (tmp_path / "params-000.csv").read_text() == ",".join(PARAM_COLUMNS) + "\n"
    assert len(AudioShard(tmp_path / "shard-000.h5")) == 0


def test_missing_noise_pool_skips_noise_conditions(corpus, tmp_path):
    laugh = build_condition("laugh", {"type": "insert", "category": "laugh"})
    rows, _ = corpus
    assert "noise" in unmet_requirement(laugh, rows)
    assert unmet_requirement(laugh, rows, noise=FakeNoise()) is None
    status, _ = _run(laugh, corpus, tmp_path)
    assert status["skipped"] and "noise" in status["reason"]


def test_alignments_are_read_for_conditions_that_need_them(corpus, tmp_path):
    rows, store = corpus
    rows = rows.copy()
    words = [Segment(0.0, 0.2, "<s>", "<s>"), Segment(0.2, 0.5, "THE", "the"), Segment(0.5, 0.9, "CAT", "cat")]
    for k in (0, 2):
        base = tmp_path / "align" / f"u{k}"
        write_sphinx_seg(base.with_suffix(".wdseg"), words)
        write_sphinx_seg(base.with_suffix(".phseg"), [Segment(0.2, 0.35, "DH", "dh"), Segment(0.35, 0.5, "AH", "ah")],
                         kind="Phone")
        rows.loc[k, "alignment"] = str(base.with_suffix(".wdseg"))
    status, params = _run(NeedsWords("words"), (rows, store), tmp_path / "out")
    assert not status["skipped"]
    assert list(params["status"]) == ["ok", "skipped: no alignment for this utterance", "ok",
                                      "skipped: no alignment for this utterance", "skipped: no alignment for this utterance"]
    assert list(params["p_n_words"].dropna()) == [3, 3] and list(params["p_n_phones"].dropna()) == [2, 2]
    # The verdict comes from the whole corpus: a shard without alignments of an aligned corpus is not skipped.
    status, _ = _run(NeedsWords("words"), (rows.iloc[[1, 3]], store), tmp_path / "part", manifest=rows)
    assert not status["skipped"] and status["n_skipped"] == 2


def test_pesq_errors_give_nan_with_a_note():
    value, note = measure_pesq(np.zeros(SR, dtype=np.float32), np.zeros(SR, dtype=np.float32))
    assert math.isnan(value) and note.startswith("pesq: NoUtterancesError")


def test_merge_gives_a_readable_dataset(corpus, tmp_path):
    rows, store = corpus
    parts = []
    for k, part in enumerate((rows.iloc[:2], rows.iloc[2:])):
        out = tmp_path / "parts"
        augment_shard(OddOnes("odd"), part, store, pool="test", global_seed=SEED, out_shard=out / f"shard-00{k}.h5",
                      out_params=out / f"params-00{k}.csv", out_status=out / f"status-00{k}.json", progress=False)
        parts.append(k)
    out = tmp_path / "parts"
    status = merge_augmented([out / f"shard-00{k}.h5" for k in parts], [out / f"params-00{k}.csv" for k in parts],
                             [out / f"status-00{k}.json" for k in parts], out_params=out / "params.csv",
                             out_index=out / "index.csv", out_status=out / "status.json")
    assert status["n_ok"] == 3 and status["n_skipped"] == 2 and not status["skipped"] and status["n_shards"] == 2
    merged = read_params(out / "params.csv")
    assert list(merged["utt_id"]) == [f"u{i}" for i in range(5)]
    # Cells are copied as text: every value of each part appears unchanged.
    for k in parts:
        part = read_params(out / f"params-00{k}.csv")
        assert merged.set_index("utt_id").loc[part["utt_id"], list(part.columns[1:])].values.tolist() == \
            part[list(part.columns[1:])].values.tolist()
    dataset = AudioStore.from_index(out / "index.csv")
    assert dataset.utt_ids == ["u0", "u2", "u4"]
    assert dataset.read("u2").size == int(store.read("u2").size * 0.9)


def test_merge_of_a_skipped_condition(corpus, tmp_path):
    drop = build_condition("drop-word", {"type": "drop_words"})
    _run(drop, corpus, tmp_path)
    status = merge_augmented([tmp_path / "shard-000.h5"], [tmp_path / "params-000.csv"], [tmp_path / "status-000.json"],
                             out_params=tmp_path / "params.csv", out_index=tmp_path / "index.csv",
                             out_status=tmp_path / "status.json")
    assert status["skipped"] and "alignment" in status["reason"] and status["n_skipped"] == 5
    assert (tmp_path / "params.csv").read_text() == ",".join(PARAM_COLUMNS) + "\n"
    assert len(AudioStore.from_index(tmp_path / "index.csv")) == 0


def test_gallery(corpus, tmp_path):
    rows, store = corpus
    frames = {"a": pd.DataFrame({"utt_id": ["u0", "u1", "u2"], "status": ["skipped: x", "ok", "ok"]}),
              "b": pd.DataFrame({"utt_id": ["u0", "u1", "u2"], "status": ["ok", "skipped: y", "ok"]}),
              "c": None}
    assert gallery_utterance(["u0", "u1", "u2"], frames) == "u2"
    assert gallery_utterance(["u0", "u1"], frames) == "u0"  # none kept by all: the first
    x = store.read("u0")
    panels = [{"condition": "half", "subtitle": "distortion · retaining", "audio": x[: x.size // 2] * 0.5},
              {"condition": "drop-word", "subtitle": "distortion · retaining", "reason": "no alignments"}]
    for name in ("a.png", "b.png"):
        plot_gallery(x, panels, tmp_path / name, title="test")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert filecmp.cmp(tmp_path / "a.png", tmp_path / "b.png", shallow=False)


def test_perception_override_reaches_params_and_status(corpus, tmp_path):
    fade = build_condition("fade-in", {"type": "fade", "direction": "in", "perception": "altering"})
    status, params = _run(fade, corpus, tmp_path)
    assert set(params["perception"]) == {"altering"} and status["perception"] == "altering"


def test_skip_reasons_are_counted_by_kind():
    assert reason_kind("the first 1.056 s are silent; noise 10 dB under them") == "the first # s are silent; noise # dB under them"
    assert reason_kind("no clip in 20 draws") == reason_kind("no clip in 3 draws")


@pytest.mark.parametrize("spec", [{"type": "reverb"}, {"type": "speed_utterance", "factor": 1.25}])
def test_batched_conditions_give_the_same_bytes(corpus, tmp_path, monkeypatch, spec):
    """Conditions with an exact batch path (one SoX process per chunk) write exactly what the
    per-utterance path writes; chunks smaller than the shard included."""
    import sernoise.augment as augment

    cond = build_condition("c", spec)
    assert cond.batch_exact
    monkeypatch.setattr(augment, "BATCH_SIZE", 2)  # 5 utterances: chunks of 2, 2, 1
    calls = []
    real = type(cond).apply_batch
    monkeypatch.setattr(type(cond), "apply_batch", lambda self, *a, **k: calls.append(len(a[0])) or real(self, *a, **k))
    _run(cond, corpus, tmp_path / "batched", pool="train")
    assert calls == [2, 2, 1]
    monkeypatch.setattr(type(cond), "batch_exact", False)
    _run(cond, corpus, tmp_path / "single", pool="train")
    assert calls == [2, 2, 1]
    for name in ("shard-000.h5", "params-000.csv", "status-000.json"):
        assert filecmp.cmp(tmp_path / "batched" / name, tmp_path / "single" / name, shallow=False), name


def test_failed_batch_is_redone_one_by_one(tmp_path, monkeypatch):
    """A chunk whose batch call fails is applied per utterance, so the error names the utterance."""
    import sernoise.augment as augment

    rows = []
    with ShardWriter(tmp_path / "clean.h5") as writer:
        for i in range(3):
            x = _speechlike(i, 1.0) if i != 1 else np.zeros(SR, dtype=np.float32)
            writer.add(f"u{i}", x)
            rows.append({c: "" for c in MANIFEST_COLUMNS} | {"utt_id": f"u{i}", "speaker": "s0"})
    corpus = (pd.DataFrame(rows, columns=MANIFEST_COLUMNS), AudioStore([tmp_path / "clean.h5"]))
    monkeypatch.setattr(augment, "BATCH_SIZE", 4)
    with pytest.raises(augment.AugmentError, match=r"utterance u1: .*silent"):
        _run(build_condition("reverb", {"type": "reverb"}), corpus, tmp_path / "out", pool="train")


def test_stored_speech_levels_change_no_output_and_save_the_p56(corpus, tmp_path, monkeypatch):
    """Clean shards written with speech_levels=True (as the prepare stage writes them) give the
    additive conditions their P.56 level: the same shard bytes and params as computing it, and
    no P.56 is computed in the job."""
    import sernoise.conditions.snr as snr_mod

    rows, plain_store = corpus
    with ShardWriter(tmp_path / "clean-levels.h5", speech_levels=True) as writer:
        for utt_id in rows["utt_id"]:
            writer.add(utt_id, plain_store.read(utt_id))
    level_store = AudioStore([tmp_path / "clean-levels.h5"])
    env = build_condition("env-nat-cont-snr5", {"type": "env", "category": "nat", "position": "cont", "snr_db": 5})
    _, plain = _run(env, (rows, plain_store), tmp_path / "plain", noise=FakeNoise())
    calls = []
    real = snr_mod.active_speech_power
    monkeypatch.setattr(snr_mod, "active_speech_power", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, stored = _run(env, (rows, level_store), tmp_path / "stored", noise=FakeNoise())
    assert calls == []
    assert filecmp.cmp(tmp_path / "plain" / "shard-000.h5", tmp_path / "stored" / "shard-000.h5", shallow=False)
    pd.testing.assert_frame_equal(plain, stored)
    assert (stored["status"] == "ok").all() and stored["speech_level_active_db"].notna().all()
