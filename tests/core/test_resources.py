"""The resource machinery every hook shares: declaration, binding, verbs, filters, paths, de-duplication, find."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from airflow_provider_mlconnector.core.http import ApiClient, RetrySettings
from airflow_provider_mlconnector.core.paging import PageNumberPaginator
from airflow_provider_mlconnector.core.resources import READ_ONLY, Record, Resource

BASE = "https://api.example.test"


class Toy(Resource["ToyHook"]):
    """A flavour as small as they come: ``{"rows": [...]}`` pages, bare records, HTTP DELETE."""

    created_field = "created"

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterable[Record]:
        return self.hook.client.paginate(path, PageNumberPaginator(size=2), params=filters, records=lambda p: p["rows"])

    def _get(self, path: str) -> Record:
        answer: Record = self.hook.client.get_json(path)
        return answer

    def _create(self, path: str, body: Mapping[str, Any]) -> Record:
        answer: Record = self.hook.client.send_json("POST", path, json=dict(body))
        return answer

    def _delete(self, path: str) -> Record | None:
        self.hook.client.request("DELETE", path)
        return None

    def _tenant(self, name: str) -> Any:
        return self.hook.shop if name == "shop" else super()._tenant(name)


class ToyHook:
    conn_type = "toy"
    things = Toy("/shops/{shop}/things", delete="http", filters=("colour", "ids"))
    parts = Toy("/shops/{shop}/things/{thing_id}/parts", verbs=READ_ONLY)

    def __init__(self, sleeps) -> None:
        self.shop = "s1"
        self.client = ApiClient(system="toy", base_url=BASE, sleep=sleeps, retry=RetrySettings(max_attempts=1))


@pytest.fixture
def hook(sleeps):
    return ToyHook(sleeps)


def rows(*ids, **fields):
    return {"json": {"rows": [{"id": i, **fields} for i in ids]}}


def test_a_declaration_read_from_the_class_is_not_usable_until_read_from_a_hook(hook):
    assert repr(ToyHook.things) == "Toy('/shops/{shop}/things')"
    with pytest.raises(TypeError, match="toy things is a declaration"):
        ToyHook.things.get(1)
    assert hook.things.hook is hook
    assert hook.things is hook.things  # bound once per hook
    assert ToyHook(hook.client.sleep).things is not hook.things


def test_paths_take_the_tenant_from_the_hook_and_placeholders_from_arguments(hook, requests_mock):
    requests_mock.get(f"{BASE}/shops/s1/things/7/parts", **rows(1))
    requests_mock.get(f"{BASE}/shops/s1/things/a%2Fb", json={"id": "a/b"})
    assert list(hook.parts.list(thing_id=7)) == [{"id": 1}]
    assert hook.things.get("a/b") == {"id": "a/b"}  # ids are quoted into one path segment
    with pytest.raises(TypeError, match="needs thing_id"):
        list(hook.parts.list())


def test_a_verb_the_api_does_not_offer_is_refused_before_any_call(hook, requests_mock):
    with pytest.raises(TypeError, match="toy parts cannot create: the API offers get, list"):
        hook.parts.create({"name": "x"}, thing_id=7)
    with pytest.raises(TypeError, match="cannot archive"):
        hook.things.archive(1)
    assert requests_mock.call_count == 0


def test_an_undocumented_filter_is_refused_as_the_vendor_would_ignore_it_and_return_all(hook, requests_mock):
    with pytest.raises(TypeError, match=r"cannot be filtered by size \(documented filters: colour, ids\)"):
        list(hook.things.list(size="L"))
    assert requests_mock.call_count == 0


def test_an_empty_choice_matches_nothing_without_asking_the_vendor(hook, requests_mock):
    assert list(hook.things.list(ids=[])) == []
    assert requests_mock.call_count == 0


def test_a_choice_longer_than_the_in_limit_is_sent_as_several_queries(hook, requests_mock):
    requests_mock.get(f"{BASE}/shops/s1/things", [rows(1), rows(2), rows(3)])
    hook.things.in_limit = 2
    assert [r["id"] for r in hook.things.list(ids=[5, 1, 3, 4, 2])] == [1, 2, 3]
    assert [r.qs["ids"] for r in requests_mock.request_history] == [["1", "2"], ["3", "4"], ["5"]]
    with pytest.raises(ValueError, match="only one filter may list more than 2 values"):
        list(hook.things.list(ids=[1, 2, 3], colour=["a", "b", "c"]))


def test_a_record_that_moves_between_pages_is_returned_once(hook, requests_mock, caplog):
    # Record 2 is pushed from page 1 to page 2 by an insert while paging.
    requests_mock.get(f"{BASE}/shops/s1/things", [rows(1, 2), rows(2, 3), rows()])
    with caplog.at_level(logging.WARNING):
        assert [r["id"] for r in hook.things.list()] == [1, 2, 3]
    assert "1 rows came twice while paging" in caplog.text


def test_find_matches_exactly_and_takes_the_oldest_of_duplicates(hook, requests_mock, caplog):
    requests_mock.get(
        f"{BASE}/shops/s1/things",
        [
            {
                "json": {
                    "rows": [
                        {"id": 3, "colour": "red", "created": "2024-05-02"},
                        {"id": 4, "colour": "Red", "created": "2024-05-01"},  # a lenient server's near match
                    ]
                }
            },
            {"json": {"rows": [{"id": 5, "colour": "red", "created": "2024-04-30"}]}},
        ],
    )
    with caplog.at_level(logging.WARNING):
        assert hook.things.find(colour="red")["id"] == 5
    assert "2 records match ['colour'] (3, 5); using the oldest" in caplog.text
    assert requests_mock.request_history[0].qs == {"colour": ["red"], "page": ["1"], "per_page": ["2"]}
    assert hook.things.find(colour="blue") is None


def test_find_compares_values_as_the_vendor_spells_them(hook, requests_mock):
    requests_mock.get(f"{BASE}/shops/s1/things", json={"rows": [{"id": 8, "colour": 5}]})
    assert hook.things.find(colour="5")["id"] == 8
    assert hook.things.find(colour=["4", 5])["id"] == 8
    assert hook.things.find(ids=[8])["id"] == 8  # a filter naming no field of the record was the vendor's to apply


def test_create_and_delete_go_through_the_flavour(hook, requests_mock):
    requests_mock.post(f"{BASE}/shops/s1/things", json={"id": 9, "colour": "red"})
    requests_mock.delete(f"{BASE}/shops/s1/things/9", status_code=204)
    assert hook.things.create({"colour": "red"}) == {"id": 9, "colour": "red"}
    assert hook.things.delete(9) is None
    assert requests_mock.request_history[0].json() == {"colour": "red"}


def test_unknown_verbs_in_a_declaration_fail_at_import_time():
    with pytest.raises(ValueError, match="unknown verbs"):
        Toy("/x", verbs="list fetch")
