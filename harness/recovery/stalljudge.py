"""Stalls the state monitor saw, judged whatever the kernel log said: a reset that took
longer than its bound (NOT_RECOVERED), writes that waited longer than theirs after a return
to live (SLOW). Reads the timeline only."""

from __future__ import annotations

from harness.reading.timeline import Timeline
from harness.reading.verdict import Failure, FailureKind


def stall_failures(timeline: Timeline, reset_bound: float | None,
                   resume_bound: float | None, multipath: bool = False) -> list[Failure]:
    """Each stall in ``timeline`` as a failure (None: that bound is not judged).
    ``multipath``: native multipath names a namespace's block device after the subsystem,
    not a controller, and writes go down either path: no controller's resume is judged."""
    if multipath:
        resume_bound = None
    return [Failure(FailureKind.NOT_RECOVERED, stall.message, code="slow-reset",
                    requeued=stall.requeued) if stall.what == "reset"
            else Failure(FailureKind.SLOW, stall.message, code="io-stalled")
            for stall in timeline.stalls(reset_bound, resume_bound,
                                         timeline.writing_spans())]
