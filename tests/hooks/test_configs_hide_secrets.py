"""Every configuration object keeps its secrets out of ``repr()``, the one way: ``field(repr=False)``.

The objects are found, not listed, so a config added later is held to the same rule.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re

import pytest

import airflow_provider_mlconnector
from airflow_provider_mlconnector.state import StateStore

# Field names that hold a secret: passwords, client/user secrets, tokens, developer and API keys.
# ``token_url``, ``credential_key`` or ``natural_key`` are names of things, not secrets.
SECRET_FIELD = re.compile(r"(password|secret|_token|dev_key|api_key)$")


def _package_dataclasses() -> list[type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(airflow_provider_mlconnector.__path__, "airflow_provider_mlconnector."):
        # the sandbox emulates vendors (its secrets are published test values); __main__ modules run on import
        if ".sandbox" in module_info.name or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found[obj.__qualname__] = obj
    return [found[name] for name in sorted(found)]


def _hand_written_repr(cls: type) -> bool:
    """True when the class body defines ``__repr__`` (the dataclass one is compiled from a string)."""
    method = vars(cls).get("__repr__")
    return method is not None and inspect.unwrap(method).__code__.co_filename != "<string>"


WITH_SECRETS = [
    cls for cls in _package_dataclasses() if any(SECRET_FIELD.search(f.name) for f in dataclasses.fields(cls))
]


def test_the_search_finds_the_configs_of_all_six_hooks_and_the_airflow_api():
    names = {cls.__name__ for cls in WITH_SECRETS}
    assert {
        "BambooHRConfig",
        "BigCommerceConfig",
        "BillConfig",
        "ExpensifyConfig",
        "FreshBooksConfig",
        "QuickBooksConfig",
        "AirflowApiConfig",
    } <= names


@pytest.mark.parametrize("cls", WITH_SECRETS, ids=lambda cls: cls.__name__)
def test_secret_fields_are_declared_repr_false_and_no_hand_written_repr(cls):
    shown = [f.name for f in dataclasses.fields(cls) if SECRET_FIELD.search(f.name) and f.repr]
    assert shown == [], f"{cls.__name__}: declare {shown} with field(repr=False)"
    assert not _hand_written_repr(cls), f"{cls.__name__}: drop the hand-written __repr__, use field(repr=False)"


@pytest.mark.parametrize("cls", WITH_SECRETS, ids=lambda cls: cls.__name__)
def test_repr_and_str_show_the_settings_but_never_a_secret_value(cls):
    values = {f.name: f"value-of-{f.name}" for f in dataclasses.fields(cls) if f.init}
    text = repr(cls(**values)) + str(cls(**values))
    for name, value in values.items():
        if SECRET_FIELD.search(name):
            assert value not in text
        else:
            assert value in text  # hiding everything would hide the settings an operator needs to see


def test_state_store_repr_hides_the_database_password():
    store = StateStore("postgresql+psycopg2://mlc:pg-pass-7f3a@db.internal:5432/state")  # lazy: connects on use
    assert "pg-pass-7f3a" not in repr(store) + str(store) + store.url
    assert "db.internal" in repr(store)
