"""Room reverberation (paper §5.2 *Rev*; SPEC §5 ``reverb``), with SoX's ``reverb`` effect.

The paper varies "reverberation ratio or room size"; here every SoX reverb parameter is a
``[min, max]`` range (or one fixed number) drawn uniformly per utterance:

=================  =========  ===========================================================
argument           default    SoX meaning (limits)
=================  =========  ===========================================================
reverberance       [30, 90]   tail length / density, % (0-100)
room_scale         [30, 100]  room size, % (0-100)
hf_damping         [30, 70]   high-frequency absorption, % (0-100)
pre_delay_ms       [0, 20]    delay before the reverberation, ms (0-500)
wet_gain_db        0          level of the reverberation, dB (-10..10)
wet_only           false      output only the reverberation (no dry signal)
=================  =========  ===========================================================

Drawn values are rounded to 0.01 before use, so ``params`` are exactly what SoX was given.

Length: SoX's ``reverb`` outputs as many samples as it reads (no tail is appended), so the
reverberation tail beyond the end of the input is cut and the output has the input's length,
which keeps the difference-signal SNR defined.

Level: no per-utterance normalisation (that would make the dry level content-dependent).
Instead the input enters SoX 12 dB down and leaves 12 dB up (:mod:`.tools` headroom), so the
dry path keeps its level exactly, the added reverberation has the level the parameters
define, and nothing clips inside SoX (clipping would be reported as an error).  The output
may exceed ±1 where a loud input's reverberation adds up; the audio store keeps such peaks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Condition, Context, Result
from .tools import check_input, run_sox, run_sox_batch

# argument -> (SoX limits, default range)
RANGES = {
    "reverberance": ((0.0, 100.0), (30.0, 90.0)),
    "hf_damping": ((0.0, 100.0), (30.0, 70.0)),
    "room_scale": ((0.0, 100.0), (30.0, 100.0)),
    "pre_delay_ms": ((0.0, 500.0), (0.0, 20.0)),
    "wet_gain_db": ((-10.0, 10.0), (0.0, 0.0)),
}
STEREO_DEPTH = 100.0  # SoX default; irrelevant for mono, but positional before pre-delay
DECIMALS = 2


class Reverb(Condition):
    """Reverberation with per-utterance random room parameters (see module docstring).

    Params: ``reverberance``, ``hf_damping``, ``room_scale``, ``pre_delay_ms``,
    ``wet_gain_db`` (the drawn values) and ``wet_only``.
    """

    type_name = "reverb"
    family = "distortion"
    default_perception = "retaining"
    batch_exact = True  # apply_batch returns, utterance by utterance, exactly what __call__ returns

    def __init__(
        self,
        condition_id: str,
        *,
        reverberance=RANGES["reverberance"][1],
        room_scale=RANGES["room_scale"][1],
        hf_damping=RANGES["hf_damping"][1],
        pre_delay_ms=RANGES["pre_delay_ms"][1],
        wet_gain_db=0.0,
        wet_only: bool = False,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        given = {
            "reverberance": reverberance,
            "hf_damping": hf_damping,
            "room_scale": room_scale,
            "pre_delay_ms": pre_delay_ms,
            "wet_gain_db": wet_gain_db,
        }
        self.ranges: dict[str, tuple[float, float]] = {name: self._range(name, value) for name, value in given.items()}
        if not isinstance(wet_only, bool):
            raise self._error("wet_only", f"must be true or false, got {wet_only!r}")
        self.wet_only = wet_only

    def _range(self, name: str, value) -> tuple[float, float]:
        """A number (fixed) or ``[min, max]`` within SoX's limits for ``name``."""

        def number(v):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise self._error(name, f"must be a number or a [min, max] pair of numbers, got {value!r}")
            return float(v)

        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self._error(name, f"a range needs exactly [min, max], got {value!r}")
            low, high = number(value[0]), number(value[1])
        else:
            low = high = number(value)
        limits = RANGES[name][0]
        self._check_range(name, low, *limits)
        self._check_range(name, high, *limits)
        if low > high:
            raise self._error(name, f"min {low} is larger than max {high}")
        return low, high

    def args(self) -> dict:
        return {**{name: list(r) for name, r in self.ranges.items()}, "wet_only": self.wet_only}

    def draw(self, rng: np.random.Generator) -> dict:
        """One utterance's parameters (always the same draws, in the same order)."""
        params = {}
        for name in RANGES:  # fixed order: the rng stream maps to the same parameters
            low, high = self.ranges[name]
            params[name] = round(float(rng.uniform(low, high)), DECIMALS)
        params["wet_only"] = self.wet_only
        return params

    @staticmethod
    def effect(params: dict) -> list[str]:
        """The SoX effect arguments for drawn ``params``."""
        args = ["reverb"]
        if params["wet_only"]:
            args.append("-w")
        values = [
            params["reverberance"],
            params["hf_damping"],
            params["room_scale"],
            STEREO_DEPTH,
            params["pre_delay_ms"],
            params["wet_gain_db"],
        ]
        return args + [repr(float(v)) for v in values]

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        params = self.draw(rng)
        return Result(run_sox(x, sr, self.effect(params)), params)

    def apply_batch(
        self,
        xs: Sequence[np.ndarray],
        sr: int,
        rngs: Sequence[np.random.Generator],
        contexts: Sequence[Context] | None = None,
    ) -> list[Result]:
        """:meth:`apply` for many utterances with ONE SoX process; identical results.

        Each utterance gets its own effects chain (fresh reverb state, its own drawn
        parameters), so no silent gaps are needed and every output equals the separate
        call bit for bit (see :func:`.tools.run_sox_batch`).  ``rngs[i]`` is the generator
        :meth:`apply` would get for ``xs[i]``; ``contexts`` only name utterances in errors.
        """
        if len(rngs) != len(xs):
            raise ValueError(f"{len(xs)} utterances but {len(rngs)} generators")
        ids = [c.utt_id for c in contexts] if contexts is not None else [f"#{i}" for i in range(len(xs))]
        xs = [check_input(self, x, sr, utt) for x, utt in zip(xs, ids)]
        drawn = [self.draw(rng) for rng in rngs]
        ys = run_sox_batch(xs, sr, [self.effect(p) for p in drawn])
        return [self.checked_result(Result(y, p), utt) for y, p, utt in zip(ys, drawn, ids)]
