"""Pitch shift (paper §5.2 *Pitch*; SPEC §5 ``pitch-up`` / ``pitch-down``), with Rubber Band.

``factor`` is a frequency ratio: 1.25 raises every frequency by a quarter (+3.86 semitones),
0.75 lowers it (−4.98 semitones); ``semitones = 12·log2(factor)``.  The duration is kept
(Rubber Band's offline mode returns exactly the input's length; the output is still fitted
to it so the difference-signal SNR is always defined).

Rubber Band options, chosen for speech:

* ``engine="fine"`` (R3, ``--fine``): clearly better on voice than the older R2 engine, at
  ~3× the cost (≈0.1 s per 4 s utterance); ``engine="fast"`` selects R2 (``--fast``), where
  ``crisp`` (0-6, tool default 5) may tune transient handling.  Crispness does not exist
  for R3, so giving it there is an error.
* ``formant=True`` (``--formant``): the spectral envelope (formants, i.e. vocal-tract
  resonances) is kept, so the shift changes the intonation level — the emotional cue the
  paper's perception results are about (activation rises with pitch) — rather than also
  making the speaker sound like a smaller/larger person.  ``formant: false`` reproduces a
  plain resampling-style shift, as simpler libraries (probably the paper's) do.
* ``--ignore-clipping`` with a fixed headroom (see :mod:`.tools`): the tool never re-runs
  with a content-dependent lower gain.

Rubber Band is deterministic, so no random number is drawn (``rng`` is accepted and unused).

Backend: the ``rubberband`` CLI only.  In-process Rubber Band (the ``pylibrb`` 0.1.2 wheel) was
measured and not adopted: its bundled library is built with FFTW and libsamplerate, while the
Debian CLI (3.1.2) uses Rubber Band's built-in FFT and BQResampler, so its outputs differ from
the CLI's by ~40 dB SNR even when fed in the CLI's 1024-sample blocks (whole-buffer calls
differ completely in phase); results would then depend on which Python modules happen to be
installed.  And it would save little: on 3.5 s RAVDESS clips the R3 engine itself costs
~90 ms in process against ~100 ms through the CLI (R2: ~35 against ~45-55 ms).  R3 stays the
default: R2 halves the time but is still several times slower than simple PV/WSOLA shifters,
so speed is not a reason to give up R3's better voice quality.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import Condition, Context, Result
from .tools import DEFAULT_GAP_S, check_input, fit_length, run_rubberband, run_rubberband_batch

FACTOR_RANGE = (0.5, 2.0)
ENGINES = ("fine", "fast")


class PitchShift(Condition):
    """Every frequency multiplied by ``factor`` (duration unchanged).  Params: ``factor``, ``semitones``."""

    type_name = "pitch"
    family = "distortion"
    default_perception = "altering"

    def __init__(
        self,
        condition_id: str,
        *,
        factor: float = 1.25,
        formant: bool = True,
        engine: str = "fine",
        crisp: int | None = None,
        perception: str | None = None,
    ):
        super().__init__(condition_id, perception=perception)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise self._error("factor", f"must be a number, got {factor!r}")
        self.factor = float(self._check_range("factor", float(factor), *FACTOR_RANGE))
        if self.factor == 1.0:
            raise self._error("factor", "1.0 changes nothing")
        if not isinstance(formant, bool):
            raise self._error("formant", f"must be true or false, got {formant!r}")
        self.formant = formant
        if engine not in ENGINES:
            raise self._error("engine", f"must be one of {ENGINES}, got {engine!r}")
        self.engine = engine
        if crisp is not None:
            if engine != "fast":
                raise self._error("crisp", "only the 'fast' (R2) engine has a crispness setting")
            if isinstance(crisp, bool) or not isinstance(crisp, int):
                raise self._error("crisp", f"must be an integer 0-6, got {crisp!r}")
            self._check_range("crisp", crisp, 0, 6)
        self.crisp = crisp

    @property
    def semitones(self) -> float:
        return 12.0 * math.log2(self.factor)

    def args(self) -> dict:
        return {"factor": self.factor, "formant": self.formant, "engine": self.engine, "crisp": self.crisp}

    strength_knob = "factor"

    def at_strength(self, strength: float) -> "PitchShift":
        """The shift scaled in semitones: factor ** strength."""
        return self._scaled_copy(strength, factor=self.factor ** float(strength))

    def options(self) -> list[str]:
        """The rubberband command-line options for this condition."""
        opts = ["--fine" if self.engine == "fine" else "--fast", "--frequency", repr(self.factor)]
        if self.formant:
            opts.append("--formant")
        if self.crisp is not None:
            opts += ["--crisp", str(self.crisp)]
        return opts

    def _params(self) -> dict:
        return {"factor": self.factor, "semitones": self.semitones}

    def apply(self, x: np.ndarray, sr: int, rng: np.random.Generator, context: Context) -> Result:
        y = run_rubberband(x, sr, self.options())
        return Result(fit_length(y, x.size), self._params())

    def apply_batch(
        self,
        xs: Sequence[np.ndarray],
        sr: int,
        rngs: Sequence[np.random.Generator] | None = None,
        contexts: Sequence[Context] | None = None,
        *,
        gap_s: float = DEFAULT_GAP_S,
    ) -> list[Result]:
        """:meth:`apply` for many utterances with ONE rubberband process.

        The utterances are joined with ``gap_s`` seconds of silence (≥ 0.5 s: several times
        Rubber Band's analysis window at 16 kHz, so no utterance's processing reaches into
        its neighbours) and the output cut at the same offsets.  Results match per-utterance
        calls closely (log-mel correlation > 0.99) but not bit for bit: Rubber Band's output
        phase depends on where an utterance sits in the stream, so the waveform (and the
        difference-signal SNR) of an utterance depends on its batch.  Measured on 3.5 s
        RAVDESS utterances, batching saves nothing (≈100 ms/utt either way: the cost is the
        processing, not the process start), so the workflow should prefer :meth:`apply`,
        whose output depends on the utterance alone.  ``rngs`` is accepted for the common
        batch signature and unused; ``contexts`` only name utterances in errors.
        """
        ids = [c.utt_id for c in contexts] if contexts is not None else [f"#{i}" for i in range(len(xs))]
        xs = [check_input(self, x, sr, utt) for x, utt in zip(xs, ids)]
        ys = run_rubberband_batch(xs, sr, self.options(), gap_s=max(gap_s, DEFAULT_GAP_S))
        return [Result(fit_length(y, x.size), self._params()) for x, y in zip(xs, ys)]
