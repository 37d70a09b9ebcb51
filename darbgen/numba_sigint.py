"""Ctrl-C while numba compiles.

numba compiles a kernel the first time it is called (or loads it from its
cache) under its global compiler lock, and LLVM calls back into Python during
that work (ctypes callbacks such as the object cache's). A KeyboardInterrupt
raised inside such a callback is printed as "Exception ignored ..." and
swallowed, and the compilation goes on in a broken state: "RuntimeError: no
compiled object yet", a traceback instead of "darbgen: interrupted".

:func:`install` registers a listener on numba's ``numba:compiler_lock``
event: while the lock is held (in the main thread), a SIGINT is only noted,
and raised again as soon as the outermost lock is released, where a
KeyboardInterrupt is an ordinary Python exception. The kernels themselves
stay interruptible between calls; compilation and cache loads take seconds
at most. darbgen's numba modules call :func:`install` when imported.
"""
import signal
import threading

_installed = False


def install():
    """Register the listener once (idempotent)."""
    global _installed
    if _installed:
        return
    from numba.core import event

    class _HoldSigint(event.Listener):
        def __init__(self):
            self.depth = 0
            self.caught = False
            self.previous = None

        def _note(self, signum, frame):
            self.caught = True

        def on_start(self, evt):
            if threading.current_thread() is not threading.main_thread():
                return
            if self.depth == 0:
                previous = signal.getsignal(signal.SIGINT)
                if previous in (signal.SIG_IGN, None):      # nothing to hold back (or not ours to touch)
                    return
                self.previous, self.caught = previous, False
                signal.signal(signal.SIGINT, self._note)
            self.depth += 1

        def on_end(self, evt):
            if threading.current_thread() is not threading.main_thread() or self.depth == 0:
                return
            self.depth -= 1
            if self.depth == 0:
                signal.signal(signal.SIGINT, self.previous)
                self.previous = None
                if self.caught:
                    self.caught = False
                    signal.raise_signal(signal.SIGINT)    # the user's Ctrl-C, now that numba is done

    event.register("numba:compiler_lock", _HoldSigint())
    _installed = True
