"""Process-level tuning applied once the server is up."""

from __future__ import annotations

import gc
import resource

#: (young, gen1, gen2) thresholds; see :func:`tune_gc`
GC_THRESHOLDS = (20_000, 20, 20)
#: with the SIP switch: see :func:`tune_gc`
GC_THRESHOLDS_SIP = (5_000, 10, 100)


def tune_gc(sip: bool = False) -> None:
    """Keep the garbage collector's pauses short under load.

    Everything allocated during start-up (modules, FastAPI's route tables, the configuration) lives
    for the whole process; freezing it takes it out of every later full collection, which
    otherwise walk it again and again (measured: 30-35 ms pauses several times a second under load,
    down to about 5 ms). A larger young-generation threshold makes collections rarer; reference
    counting still frees almost everything the request path allocates.

    The SIP switch (``sip=True``) keeps far more objects alive for a while: every transaction
    lingers 64*T1 = 32 s after its final response to absorb retransmissions (these thresholds
    were set when it lingered with all its messages, about 300,000 objects at 300 calls/s; a
    client transaction now lingers as a small record, about a third of that: the thresholds are
    kept until re-measured on a quiet machine). With the thresholds above each generation-1
    collection walked all of them: a 300 ms stall of the event loop every ~25 s, which alone put
    the INVITE->200 p99 over 250 ms (``bench/sip.py``, 30 s at 300 calls/s). Collecting the young
    generation 4 times as often and generation 1 every 10th time keeps each pause under about
    70 ms (p99 64-160 ms in the same runs) for the same total collection time; full collections
    are considered after 100 generation-1 collections (a few minutes under load) instead of 20.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*(GC_THRESHOLDS_SIP if sip else GC_THRESHOLDS))


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit, and return the new soft limit.

    Every live call leg holds an RTP socket, and the embedded media engine keeps released ones
    bound for a while to reuse them (:mod:`callbridge.media.rtp_pool`, whose size is capped by a
    share of this limit). Distributions often default the soft limit to 1,024 while allowing far
    more: a server that needs the descriptors should take them, as nginx and rtpengine do. The
    hard limit is never exceeded, and a platform that refuses the change keeps its soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard
