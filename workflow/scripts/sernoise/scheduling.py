"""A workaround for the multiplying re-scheduling timers of Snakemake's job scheduler (9.x).

Snakemake ends every scheduling round that leaves ready jobs waiting by starting a
``threading.Timer`` of the job-rate window (``--max-jobs-per-timespan``, default ``100/1s``),
which wakes the scheduler for another round.  That round starts its own timer, and every job end
triggers a round as well, so the number of timer chains grows by one with every finished job for
as long as jobs wait for a core: after a few hundred jobs the scheduler runs hundreds of rounds a
second, and each round stats the inputs of the ready jobs.  Measured in the 2-core demo: the
snakemake process used 40-50 % of a core by the training stage (its thread count grew with the
jobs done), and every job ran about a third slower than alone.

:func:`coalesce_rescheduling_timers` replaces the scheduler's timer method with one that keeps
at most ONE timer pending per scheduler.  The rate limit still gets its re-evaluation one window
later, and the rounds that job ends trigger are untouched, so no job is scheduled later than
before; the timer is a daemon thread and never delays the exit.  The Snakefile applies it;
a Snakemake without that method (renamed or fixed upstream) is left alone.
"""

from __future__ import annotations

import threading

# Snakemake's own (misspelt) name of the method that starts the timer.
TIMER_METHOD = "_schedule_reevalutation"
_PENDING = "_sernoise_rescheduling_timer_pending"


def coalesce_rescheduling_timers(scheduler_class) -> bool:
    """Make ``scheduler_class`` keep at most one re-scheduling timer pending; True when applied (or already)."""
    original = getattr(scheduler_class, TIMER_METHOD, None)
    if not callable(original):
        return False
    if getattr(original, "coalesced", False):
        return True
    guard = threading.Lock()

    def schedule_once(self, delay):
        with guard:
            if getattr(self, _PENDING, False):
                return  # a round is already due within the window: that one re-evaluates the rate limit
            setattr(self, _PENDING, True)

        def fire():
            with guard:
                setattr(self, _PENDING, False)
            original(self, 0)  # Snakemake's own wake-up, now

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    schedule_once.coalesced = True
    schedule_once.__doc__ = f"{TIMER_METHOD}, at most one pending timer (sernoise.scheduling)."
    setattr(scheduler_class, TIMER_METHOD, schedule_once)
    return True
