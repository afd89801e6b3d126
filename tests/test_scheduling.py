"""The re-scheduling timer workaround (sernoise.scheduling)."""

import threading
import time

from sernoise.scheduling import TIMER_METHOD, coalesce_rescheduling_timers


def _scheduler_class():
    class Scheduler:
        """Stands in for Snakemake's JobScheduler: its timer method wakes the scheduler after ``delay``."""

        def __init__(self):
            self.wakeups = threading.Semaphore(0)
            self.timers_started = 0

        def _schedule_reevalutation(self, delay):
            self.timers_started += 1
            threading.Timer(delay, self.wakeups.release).start()

    return Scheduler


def _wakeups(scheduler, timeout=1.0):
    count, deadline = 0, time.monotonic() + timeout
    while scheduler.wakeups.acquire(timeout=max(deadline - time.monotonic(), 0)):
        count += 1
    return count


def test_unpatched_timers_multiply_with_the_rounds():
    scheduler = _scheduler_class()()
    for _ in range(5):  # five scheduling rounds (job ends), each starting a timer
        getattr(scheduler, TIMER_METHOD)(0.05)
    assert _wakeups(scheduler, 0.5) == 5


def test_coalesced_timers_keep_one_pending_and_still_wake_the_scheduler():
    cls = _scheduler_class()
    assert coalesce_rescheduling_timers(cls) is True
    assert coalesce_rescheduling_timers(cls) is True  # idempotent: not wrapped twice
    scheduler, other = cls(), cls()
    for _ in range(5):
        getattr(scheduler, TIMER_METHOD)(0.05)
    getattr(other, TIMER_METHOD)(0.05)  # a second scheduler has its own pending timer
    assert _wakeups(scheduler, 0.5) == 1 and scheduler.timers_started == 1
    assert _wakeups(other, 0.5) == 1
    # once it has fired, the next round may start a timer again
    getattr(scheduler, TIMER_METHOD)(0.01)
    assert _wakeups(scheduler, 0.5) == 1 and scheduler.timers_started == 2


def test_the_pending_timer_never_delays_exit():
    cls = _scheduler_class()
    coalesce_rescheduling_timers(cls)
    before = {t.ident for t in threading.enumerate()}
    getattr(cls(), TIMER_METHOD)(30)
    started = [t for t in threading.enumerate() if t.ident not in before]
    assert started and all(t.daemon for t in started)


def test_a_scheduler_without_the_method_is_left_alone():
    class Other:
        pass

    assert coalesce_rescheduling_timers(Other) is False and not hasattr(Other, TIMER_METHOD)


def test_snakemake_still_has_the_method():
    # the workaround is only live while Snakemake names its timer method this way
    from snakemake.scheduling.job_scheduler import JobScheduler

    assert callable(getattr(JobScheduler, TIMER_METHOD, None))
