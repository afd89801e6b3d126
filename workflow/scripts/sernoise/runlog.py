"""Logging for rule scripts: everything a job prints goes to its ``log:`` file.

Snakemake keeps a job's log even when the job fails (outputs are removed, logs are not), so
errors, warnings and progress bars written here are what a user reads after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback

from sernoise.allocator import use_heap_for_large_blocks


@contextlib.contextmanager
def rule_log(snakemake):
    """Redirect stdout/stderr and the ``logging`` module to the rule's first log file.

    Every rule job enters it first: it also sets up malloc for the job (:mod:`sernoise.allocator`).
    """
    use_heap_for_large_blocks()
    path = snakemake.log[0] if len(snakemake.log) else None
    if path is None:
        yield logging.getLogger("sernoise")
        return
    with open(path, "w", buffering=1, encoding="utf-8") as handle:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = handle
        root = logging.getLogger()
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield logging.getLogger(f"sernoise.{snakemake.rule}")
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            root.removeHandler(handler)
            sys.stdout, sys.stderr = old_out, old_err
