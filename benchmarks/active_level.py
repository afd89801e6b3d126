"""Cost of the ITU-T P.56 active speech level per utterance, and what it does to an additive
condition, on RAVDESS clips, one core.

Usage (from the repository root)::

    .venv/bin/python benchmarks/active_level.py [--data ../shared/data] [--limit 120] [--repeat 3]

Prints, per utterance (mean over the clips, best of ``--repeat`` passes): the P.56 level
(:func:`sernoise.conditions.active_level.active_speech_level`), its three parts (envelope,
activity counts, the rest), the whole-file power for comparison, and one call of the
``env-nat-cont-snr10`` condition under ``snr.reference`` active and whole (white noise, so the
noise pool costs nothing); then the spread of active − whole level and of the activity factor.
With more clips than ``sernoise.conditions.snr`` remembers levels of (64), every condition call
computes P.56 afresh, as an augment job does (one condition, each utterance once).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import _common  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from sernoise.conditions import Context, build_condition  # noqa: E402
from sernoise.conditions import active_level as p56  # noqa: E402
from sernoise.conditions.snr import power  # noqa: E402

SR = 16000


class WhiteNoise:
    def files(self, category):
        return [f"white:{category}"]

    def read(self, key):
        return (0.1 * np.random.default_rng(1).standard_normal(8 * SR)).astype(np.float32)

    def draw(self, category, rng):
        return self.files(category)[0], self.read("")


def per_utterance_ms(clips, repeat, fn) -> float:
    return _common.best_of(repeat, lambda: [fn(x) for x in clips], warmup=True) / len(clips) * 1e3


def main() -> None:
    args = _common.corpus_parser(__doc__.splitlines()[0], repeat=3).parse_args()
    paths = _common.ravdess_files(args.data, args.limit if args.limit is not None else 120)
    clips = []
    for path in paths:
        x, sr = sf.read(str(path), dtype="float32")
        if sr != SR:
            raise SystemExit(f"{path}: {sr} Hz, expected {SR}")
        clips.append(x)
    seconds = sum(x.size for x in clips) / SR / len(clips)
    noise = WhiteNoise()
    conditions = {r: build_condition("env-nat-cont-snr10", {"type": "env", "category": "nat", "position": "cont",
                                                            "snr_db": 10}, snr_reference=r)
                  for r in ("active", "whole")}

    def apply(reference):
        cond = conditions[reference]
        return lambda x: cond(x, SR, np.random.default_rng(0), Context(utt_id="u", noise=noise))

    wall = time.perf_counter()
    rows = [
        ("P.56 active level", per_utterance_ms(clips, args.repeat, lambda x: p56.active_speech_level(x, SR))),
        ("  envelope (2 smoothers)", per_utterance_ms(clips, args.repeat, lambda x: p56.envelope(x, SR))),
        ("  envelope + activity counts",
         per_utterance_ms(clips, args.repeat, lambda x: p56.activity_counts(p56.envelope(x, SR), SR))),
        ("whole-file power", per_utterance_ms(clips, args.repeat, power)),
        ("env-nat-cont-snr10, active", per_utterance_ms(clips, args.repeat, apply("active"))),
        ("env-nat-cont-snr10, whole", per_utterance_ms(clips, args.repeat, apply("whole"))),
    ]
    levels = [p56.active_speech_level(x, SR) for x in clips]
    shift = np.array([lv.level_db - lv.long_term_db for lv in levels])
    activity = np.array([lv.activity for lv in levels])
    print(f"P.56 active speech level, 1 core, {len(clips)} RAVDESS clips (mean {seconds:.2f} s), "
          f"numpy {np.__version__}; best of {args.repeat} passes, per utterance")
    for name, ms in rows:
        print(f"  {name:<30} {ms:8.3f} ms   ({seconds / ms * 1e3:8.0f} x real time)")
    print(f"active - whole-file level: mean {shift.mean():.2f} dB, min {shift.min():.2f}, max {shift.max():.2f}")
    print(f"activity factor: mean {activity.mean():.3f}, min {activity.min():.3f}, max {activity.max():.3f}")
    print(f"total wall time: {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
