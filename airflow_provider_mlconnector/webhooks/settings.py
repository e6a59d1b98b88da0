"""Receiver and dispatcher settings, read from the environment (see ``webhooks/README.md``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_mlconnector.exceptions import ConfigurationError

ENV_PREFIX = "MLCONNECTOR_WEBHOOK_"


def conn_id_for(system: str, environ: Mapping[str, str] | None = None) -> str:
    """The Airflow connection id of ``system``: ``MLCONNECTOR_<SYSTEM>_CONN_ID`` or ``<system>_default``.

    Same variable the DAGs read, so the receiver verifies with the secrets of the connection
    the syncs use.
    """
    env = os.environ if environ is None else environ
    return env.get(f"MLCONNECTOR_{system.upper()}_CONN_ID", "").strip() or f"{system}_default"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(ENV_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{ENV_PREFIX}{name} must be positive, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(ENV_PREFIX + name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{ENV_PREFIX}{name} must be on or off, got {raw!r}")


@dataclass(frozen=True)
class WebhookSettings:
    """Tunables of the receiver and the dispatcher.

    :param max_body_bytes: larger requests get 413 before anything else is done with them.
    :param max_clock_skew: seconds a signed timestamp (BambooHR, BigCommerce) may be off our clock.
    :param trigger_interval: at most one webhook-triggered run per DAG in this many seconds.
    :param dispatch_tick: how often the dispatcher looks at the inbox when nothing wakes it.
    :param dispatcher_enabled: run the dispatcher in this process (turn off in all but one
        process if you prefer a single dispatcher; several are safe, see the README).
    :param handshake_burst: FreshBooks verification messages accepted at once per callback id;
        more get 429 before anything is read.
    :param handshake_interval: seconds after which a callback id may send one more.
    :param replay_window: FreshBooks events carry no id and no time: identical deliveries within
        the same window of this many seconds are one event, so a replayed delivery starts at
        most one run per window.
    """

    max_body_bytes: int = 256 * 1024
    max_clock_skew: float = 300.0
    trigger_interval: float = 30.0
    dispatch_tick: float = 2.0
    dispatcher_enabled: bool = True
    handshake_burst: int = 3
    handshake_interval: float = 60.0
    replay_window: float = 900.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            max_body_bytes=int(_number(env, "MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_clock_skew=_number(env, "MAX_CLOCK_SKEW", defaults.max_clock_skew),
            trigger_interval=_number(env, "TRIGGER_INTERVAL", defaults.trigger_interval),
            dispatch_tick=_number(env, "DISPATCH_TICK", defaults.dispatch_tick),
            dispatcher_enabled=_flag(env, "DISPATCHER", defaults.dispatcher_enabled),
            handshake_burst=int(_number(env, "HANDSHAKE_BURST", defaults.handshake_burst)),
            handshake_interval=_number(env, "HANDSHAKE_INTERVAL", defaults.handshake_interval),
            replay_window=_number(env, "REPLAY_WINDOW", defaults.replay_window),
        )
