"""Errors raised by the state store.

Configuration problems (no Fernet key, a bad URL) raise the provider-wide
:class:`~airflow_provider_mlconnector.exceptions.ConfigurationError`; everything else here is a
:class:`StateError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_mlconnector.exceptions import ConfigurationError, MLConnectorError, StateBusyError

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.id_map import IdMapping

__all__ = ["ConfigurationError", "IdMapConflictError", "NotFoundInStateError", "StateBusyError", "StateError"]


class StateError(MLConnectorError):
    """The state store refused an operation."""


class NotFoundInStateError(StateError, LookupError):
    """No row with that id (a dead letter, an inbox event...)."""


class IdMapConflictError(StateError):
    """A mapping would break an ID-map invariant, which can mean a duplicate in the target.

    Raised when a natural key already belongs to another source record, or when ``complete``
    would overwrite a synced mapping with a different target id. Never silently resolved: the
    caller should dead-letter the record (``error_kind="manual_reconciliation"``).
    """

    def __init__(self, message: str, *, existing: IdMapping | None = None) -> None:
        super().__init__(message)
        self.existing = existing


class ClaimLostError(StateError):
    """A writer's claim was taken over (its lease expired) or released: it must not complete it.

    The fencing check of the write-intent protocol: whoever holds the claim now recovers the
    record by its natural key, so the loser only stops.
    """
