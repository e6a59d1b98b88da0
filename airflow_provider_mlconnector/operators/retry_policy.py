"""Which failures Airflow should retry (Airflow 3.3 ``retry_policy``).

Auth and configuration failures need a human, so they fail at once instead of burning retries
(and, for single-use refresh tokens, instead of a retry storm). Rate limits and transient vendor
errors retry with the task's backoff; an unknown write outcome retries too, because the retry
resumes through the ID map's natural-key lookup and cannot create twice.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

from airflow_provider_mlconnector.exceptions import (
    AuthError,
    ConfigurationError,
    RateLimitedError,
    RetryableApiError,
    StateBusyError,
    SyncIncompleteError,
)


def sync_retry_policy() -> ExceptionRetryPolicy:
    return ExceptionRetryPolicy(
        rules=[
            RetryRule(exception=AuthError, action=RetryAction.FAIL, reason="credentials rejected: re-authorize"),
            RetryRule(exception=ConfigurationError, action=RetryAction.FAIL, reason="fix the connection or settings"),
            RetryRule(exception=RateLimitedError, action=RetryAction.RETRY, retry_delay=timedelta(minutes=5)),
            RetryRule(exception=RetryableApiError, action=RetryAction.RETRY),
            RetryRule(exception=StateBusyError, action=RetryAction.RETRY, reason="the state store was busy"),
            RetryRule(exception=SyncIncompleteError, action=RetryAction.RETRY, reason="resume the records left"),
        ]
    )
