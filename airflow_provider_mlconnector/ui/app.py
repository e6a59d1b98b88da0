"""The ML Connector page: server-rendered HTML (Jinja2) mounted on Airflow's API server.

Routes (under the plugin's prefix, ``/mlconnector-ui``):

* ``GET /``: per pair, the last runs with their per-entity summary and drift count, and the
  open dead letters by kind;
* ``GET /letters?pair=&entity=&kind=&status=&older_than_hours=``: dead letters, filtered;
* ``GET /letters/{id}``: one letter in full (its payload was redacted when stored), its
  record's history, **Replay** and **Resolve** (with a note);
* ``POST /letters/{id}/replay`` and ``/resolve``: the same code as ``mlconnector-state dlq``
  (:mod:`~airflow_provider_mlconnector.state.oncall`), one audit row naming the Airflow user;
* ``GET /history?system=&record_id=``: a record's audit rows and ID-map rows, by source or
  target id;
* ``GET /reconcile/{pair}``: the latest reconciliation report of the pair's DAG.

Every route checks the Airflow user (:mod:`.access`); POSTs also refuse another origin (the
session cookie is ``SameSite=Lax``, this is the second lock).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlparse

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from airflow_provider_mlconnector.operators.pair import Pair
from airflow_provider_mlconnector.state import StateStore, oncall
from airflow_provider_mlconnector.state.dead_letters import LetterStatus
from airflow_provider_mlconnector.state.errors import StateError
from airflow_provider_mlconnector.ui.access import Access, AirflowAccess, Viewer, forbid_unless
from airflow_provider_mlconnector.ui.runs import AirflowRuns, Runs

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
RUNS_SHOWN = 5


async def _viewer(request: Request) -> Viewer:
    access: Access = request.app.state.access
    return await access.viewer(request)


#: the signed-in Airflow user of a route (401/403 before the route runs when there is none)
Signed = Annotated[Viewer, Depends(_viewer)]


def _default_store() -> StateStore:
    from airflow_provider_mlconnector.state import get_state_store

    return get_state_store()


def _default_pairs() -> dict[str, Pair]:
    from airflow_provider_mlconnector.pairs import PAIRS

    return PAIRS


def create_app(
    store: Callable[[], StateStore] = _default_store,
    access: Access | None = None,
    runs: Runs | None = None,
    pairs: Callable[[], dict[str, Pair]] = _default_pairs,
) -> FastAPI:
    """The page's app; nothing connects until the first request. Tests pass their own parts."""
    app = FastAPI(title="ML Connector", docs_url=None, redoc_url=None, openapi_url=None)
    guard = access or AirflowAccess()
    source = runs or AirflowRuns()

    app.state.access = guard

    def page(request: Request, name: str, who: Viewer, **values: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request, name, {"viewer": who, "root": request.scope.get("root_path", ""), **values}
        )

    def visible(who: Viewer) -> dict[str, Pair]:
        return {name: pair for name, pair in pairs().items() if guard.may_view(who, name)}

    def letter_for(who: Viewer, letter_id: int) -> Any:
        letter = store().dead_letters.get(letter_id)
        if letter is None or not guard.may_view(who, letter.pair):
            raise HTTPException(status_code=404, detail=f"no dead letter {letter_id}")
        return letter

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, who: Signed) -> HTMLResponse:
        shown = visible(who)
        letters = store().dead_letters.list(status=LetterStatus.OPEN)
        by_kind = {name: Counter(dl.error_kind for dl in letters if dl.pair == name) for name in shown}
        last = {name: source.last_runs(name, RUNS_SHOWN) for name in shown}
        return page(request, "overview.html", who, pairs=shown, by_kind=by_kind, runs=last)

    @app.get("/letters", response_class=HTMLResponse)
    def letters(
        request: Request,
        who: Signed,
        pair: str = "",
        entity: str = "",
        kind: str = "",
        status: str = "open",
        older_than_hours: str = "",
    ) -> HTMLResponse:
        shown = visible(who)
        older = _age(older_than_hours)
        wanted = oncall.LetterFilter(status or None, pair or None, entity or None, kind or None, older)
        found = [dl for dl in oncall.find_letters(store(), wanted) if dl.pair in shown]
        kinds = sorted({dl.error_kind for dl in store().dead_letters.list()})
        return page(
            request, "letters.html", who, letters=found, wanted=wanted, pairs=shown, kinds=kinds,
            statuses=[s.value for s in LetterStatus], older_than_hours=older_than_hours,
        )  # fmt: skip

    @app.get("/letters/{letter_id}", response_class=HTMLResponse)
    def letter(request: Request, who: Signed, letter_id: int, done: str = "", error: str = "") -> HTMLResponse:
        dl = letter_for(who, letter_id)
        events = [e for e in store().audit.history(_source_system(pairs(), dl), dl.source_id) if e.pair == dl.pair]
        return page(
            request, "letter.html", who, letter=dl, payload=json.dumps(dl.payload, indent=2, sort_keys=True),
            events=events, may_act=guard.may_act(who, dl.pair), done=done, error=error,
            source_system=_source_system(pairs(), dl),
        )  # fmt: skip

    @app.post("/letters/{letter_id}/replay")
    def replay(request: Request, who: Signed, letter_id: int) -> RedirectResponse:
        _same_origin(request)
        dl = letter_for(who, letter_id)
        forbid_unless(guard.may_act(who, dl.pair), f"replay dead letters of {dl.pair}")
        outcome = oncall.request_replay(store(), [letter_id], oncall.Actor(who.name, "ui"))
        if outcome.flagged:
            return _back(request, letter_id, done=f"flagged for replay by the next {dl.pair} run")
        return _back(request, letter_id, error=f"not replayed: the letter is {outcome.skipped.get(letter_id)}")

    @app.post("/letters/{letter_id}/resolve")
    def resolve(request: Request, who: Signed, letter_id: int, note: Annotated[str, Form()] = "") -> RedirectResponse:
        _same_origin(request)
        dl = letter_for(who, letter_id)
        forbid_unless(guard.may_act(who, dl.pair), f"resolve dead letters of {dl.pair}")
        try:
            oncall.resolve(store(), letter_id, note, oncall.Actor(who.name, "ui"))
        except StateError as exc:
            return _back(request, letter_id, error=str(exc))
        return _back(request, letter_id, done="resolved")

    @app.get("/history", response_class=HTMLResponse)
    def history(request: Request, who: Signed, system: str = "", record_id: str = "") -> HTMLResponse:
        shown = visible(who)
        systems = sorted({h.conn_type for p in shown.values() for h in (p.source, p.target)})
        results = []
        if record_id.strip():
            for name in [system] if system else systems:
                found = oncall.record_history(store(), name, record_id.strip())
                found = oncall.RecordHistory(
                    found.system,
                    found.record_id,
                    [e for e in found.events if e.pair in shown],
                    [m for m in found.mappings if m.pair in shown],
                )
                if found.events or found.mappings:
                    results.append(found)
        return page(request, "history.html", who, systems=systems, system=system, record_id=record_id, results=results)

    @app.get("/reconcile/{pair}", response_class=HTMLResponse)
    def reconciliation(request: Request, who: Signed, pair: str) -> HTMLResponse:
        if pair not in visible(who):
            raise HTTPException(status_code=404, detail=f"no pair {pair}")
        latest = next((r for r in source.last_runs(pair, 50) if r.reconcile is not None), None)
        return page(request, "reconcile.html", who, pair=pair, run=latest)

    return app


def _source_system(pairs: dict[str, Pair], letter: Any) -> str:
    pair = pairs.get(letter.pair)
    if pair is None:
        return ""
    return pair.systems(pair.entity(letter.entity))[0].conn_type


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.headers.get("host"):
        raise HTTPException(status_code=403, detail="cross-origin request refused")


def _back(request: Request, letter_id: int, **message: str) -> RedirectResponse:
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/letters/{letter_id}?{urlencode(message)}", status_code=303)


def _age(hours: str) -> timedelta | None:
    """The filter's "older than" field; a browser sends it empty (``older_than_hours=``) when unset."""
    if not hours.strip():
        return None
    try:
        return timedelta(hours=float(hours))
    except ValueError:
        raise HTTPException(400, f"older_than_hours must be a number of hours, not {hours!r}") from None
