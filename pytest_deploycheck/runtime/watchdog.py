"""Interrupt the main thread after a time limit, without ending the process.

A Python check's ``timeout`` must fail that one check and leave the run alive, because the gate
and the rollback run after it. pytest-timeout's ``thread`` method exits the process, and its
``signal`` method owns ``SIGALRM``; this one uses a timer thread that sends ``SIGUSR2`` to the
main thread. A real signal (not just a flag) makes blocking calls such as ``time.sleep`` or a
socket read return at once, and the handler raises the caller's exception there.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

SIGNAL = signal.SIGUSR2


@contextlib.contextmanager
def interrupt_after(seconds: float, exception: Callable[[], BaseException]) -> Iterator[bool]:
    """Raise ``exception()`` in the main thread if the block runs longer than ``seconds``.

    Yields whether the limit is enforced: only the main thread can be interrupted (elsewhere
    the block runs unguarded and the caller may say so).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    lock = threading.Lock()
    active = True
    main = threading.main_thread().ident
    assert main is not None

    def handler(signum: int, frame: object) -> None:
        # A signal that arrives after the block ended (sent just before) is dropped.
        if active:
            raise exception()

    def fire() -> None:
        with lock:
            if active:
                signal.pthread_kill(main, SIGNAL)

    previous = signal.signal(SIGNAL, handler)
    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield True
    finally:
        try:
            with lock:  # the handler may still raise here: the limit was reached at the end
                active = False
        finally:
            timer.cancel()
            timer.join()
            signal.signal(SIGNAL, previous)
