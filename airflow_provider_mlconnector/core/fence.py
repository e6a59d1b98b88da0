"""Write fencing: a check the HTTP core runs right before it sends a write, after any throttle wait.

A create is claimed in the ID map with a lease. The time between the claim and the moment the
request leaves can be long (a rate-limit wait, a 429 retried, a re-login), long enough for the
lease to run out and another writer to take the claim over. So the engine wraps the vendor call
in :func:`fenced` with a check that confirms the claim is still its own and restarts the lease;
the HTTP core calls :func:`check_fence` immediately before every write attempt. A writer that
lost its claim raises there and never sends, and the lease only has to outlive one attempt
(bounded by the client's timeouts), not the whole call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FENCE: ContextVar[Callable[[], None] | None] = ContextVar("mlconnector_write_fence", default=None)


@contextmanager
def fenced(check: Callable[[], None]) -> Iterator[None]:
    """Run ``check`` before every write this thread sends inside the block (it raises to stop it)."""
    token = _FENCE.set(check)
    try:
        yield
    finally:
        _FENCE.reset(token)


def check_fence() -> None:
    """Called by the HTTP core right before a write leaves; a no-op outside :func:`fenced`."""
    check = _FENCE.get()
    if check is not None:
        check()
