#!/usr/bin/env bash
# Create (or complete) .venv with everything the workflow and its tests need. Idempotent:
# `make venv` runs this only when requirements.txt, pyproject.toml or this script change.
#  1. Debian tools used by the augmentation stage (SoX, Rubber Band, eSpeak NG for test
#     fixtures), installed with apt-get when missing.
#     SLURM's controller, node daemon and clients (Debian's slurmctld, slurmd, slurm-client) for
#     the one-node cluster of the SLURM test (tools/slurm_cluster.sh); where they cannot be
#     installed, that test skips and says why.
#  2. The pinned Python requirements.
#  3. PyTorch: the pinned release (a CPU build where one is offered locally), torchaudio
#     without its dependencies (so it cannot replace torch), and on a CPU-only torch the
#     removal of torchaudio's CUDA-linked extension libraries, which cannot load there;
#     the pure-Python parts we use (resampling, Kaldi fbank, transforms) keep working.
#  4. SpeechBrain, transformers (its Hugging Face wav2vec2 wrapper, E-DNN) and this package (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0
TORCHAUDIO_VERSION=2.11.0
SPEECHBRAIN_VERSION=1.1.2
TRANSFORMERS_VERSION=5.23.0   # SpeechBrain's Hugging Face wav2vec2 wrapper (E-DNN) needs it
APT_PACKAGES="sox libsox-fmt-mp3 rubberband-cli espeak-ng"

missing=()
for tool in sox rubberband espeak-ng; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] missing system tools: ${missing[*]}; installing: $APT_PACKAGES"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PACKAGES
  else
    echo "[setup] no apt-get here: install SoX (with mp3 support), Rubber Band and eSpeak NG yourself" >&2
    exit 1
  fi
fi

# SLURM for tests/test_workflow_slurm.py: not fatal (no root, no apt-get: the test skips, saying why)
SLURM_PACKAGES="slurmctld slurmd slurm-client"
if ! { [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && command -v sbatch >/dev/null 2>&1; }; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
    echo "[setup] installing SLURM for the one-node cluster test: $SLURM_PACKAGES"
    # shellcheck disable=SC2086  # one word per package
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $SLURM_PACKAGES; } \
      || echo "[setup] could not install $SLURM_PACKAGES: tests/test_workflow_slurm.py will skip" >&2
  else
    echo "[setup] no apt-get or no root: not installing $SLURM_PACKAGES (tests/test_workflow_slurm.py will skip)" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
$PIP install -q --upgrade pip
$PIP install -q -r requirements.txt

# torch first and pinned: an unpinned `torch` (or one pulled in by another package) would be
# the multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  $PIP install -q "torch==$TORCH_VERSION"
fi
$PIP install -q --no-deps "torchaudio==$TORCHAUDIO_VERSION"
if "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is not None)"; then
  ta_lib=$("$VENV/bin/python" -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('torchaudio').origin).parent / 'lib')")
  if compgen -G "$ta_lib/*.so" >/dev/null; then
    echo "[setup] CPU-only torch: removing torchaudio's CUDA-built extension libraries in $ta_lib"
    rm -f "$ta_lib"/*.so
  fi
fi
$PIP install -q "speechbrain==$SPEECHBRAIN_VERSION" huggingface_hub==2.4.0 "transformers==$TRANSFORMERS_VERSION"
$PIP install -q --no-deps -e .
"$VENV/bin/python" - <<'PY'
import torch, torchaudio, speechbrain, snakemake, soundfile, h5py, hdf5plugin, transformers  # noqa: F401  (fail here, not in a job)
print(f"[setup] ok: torch {torch.__version__}, torchaudio {torchaudio.__version__}, speechbrain {speechbrain.__version__}")
PY
