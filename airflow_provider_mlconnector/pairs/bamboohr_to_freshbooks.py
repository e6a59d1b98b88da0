"""BambooHR -> FreshBooks: the people who can spend, kept in step with HR; spend tagged by department.

One way only: nothing is ever written to BambooHR. Mapping rules an HR or finance lead can check:

* **Employees read**: the ids ``/employees/changed`` reports since the watermark (2 hours of
  lookback), then one custom report naming the fields, because BambooHR returns little more than
  the id otherwise: ``firstName, lastName, preferredName, workEmail, jobTitle, department,
  division, status, employmentHistoryStatus, hireDate, terminationDate``. The first run and
  ``full_resync`` read everyone, Active and Inactive. Employees whose termination date arrived
  since the last run are read as well: BambooHR does not promise to report a future-dated
  termination as a change on its date.
* **Employed or not**, as of the run's UTC date: a termination date that has arrived ends the
  employment unless a later hire date says the person was rehired; a termination date still in the
  future changes nothing until that date; otherwise ``status`` Inactive or employment status
  Terminated ends it. An employee deleted in BambooHR counts as terminated.
* **Expense people** (entity ``person``): each employee is one FreshBooks bill vendor, the record
  reimbursement bills are booked to. It is found by work e-mail (case-insensitive) among the bill
  vendors before one is created (:mod:`~airflow_provider_mlconnector.pairs.people`, shared with the
  Expensify pair: one person, one bill vendor, whichever pair met them first). A vendor found that
  way is adopted *and* brought up to date. Vendor name ``First Last``, primary contact first and
  last name and e-mail, and the note ``Employee (...) - <job title>, <department>``: name, e-mail
  and job title stay current. A termination soft-deletes the vendor (``vis_state`` 1, never a hard
  delete); a rehire restores it. An employee already gone when first seen is skipped.
* **Team members** (entity ``staff``): FreshBooks' API cannot create team members (read-only) and
  discourages creating legacy staff. Each employee is matched by work e-mail to the FreshBooks
  staff record whose id FreshBooks expenses carry as ``staffid``. With no match the employee
  *waits* (summary column ``waiting``) with the reason "add <name> as an Unassigned team member in
  FreshBooks", re-checked every run and linked as soon as the team member exists; it is never an
  error. Opt-in ``invite_team_members`` sends a FreshBooks invitation instead (FreshBooks e-mails
  the person and the invitation uses a paid seat). Opt-in ``retire_staff`` soft-deletes the staff
  record on termination and restores it on rehire; by default staff records are left alone.
* **Department tag** (entity ``expense``): FreshBooks expenses have no tag or department field.
  An expense is attributed to an employee by its ``staffid`` (their staff record) or by the
  employee's work e-mail in its notes (how the Expensify pair marks what it wrote for a person
  without a staff record). Each attributed expense that carries no department yet gets the
  employee's current BambooHR department: by default the marker ``[dept: <Department>]`` appended
  to the notes on a line of its own (e.g. ``[dept: Creative]``); with ``department_carrier`` =
  ``project``, its ``modern_projectid`` is set to the *internal* FreshBooks project titled exactly
  like the department, which the user creates (a missing one is a dead letter naming it: create
  the project, then replay). An expense that already carries a marker (ours or typed by hand, any
  department) or a project keeps it: a later department change tags only untagged expenses, and
  historic expenses keep the department they were tagged with.

**Dead letters**: ``missing_email`` (no work e-mail), ``duplicate_natural_key`` (two employees share
a work e-mail: the one met second), ``unmapped_department`` (project mode, no such project),
``malformed``. Everyone else is synced.

**Settings**: Airflow Variable ``mlconnector_bamboohr_to_freshbooks`` (JSON), all optional:
``{"invite_team_members": false, "retire_staff": false, "department_carrier": "notes"}``.
**Params**: ``dry_run``, ``full_resync``, ``replay_dead_letters`` (as every pair).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.exceptions import ConfigurationError, MappingError, NotLinkedYetError, RecordError
from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook, VisState
from airflow_provider_mlconnector.operators.pair import Ctx, Entity, Outcome, Pair, Record, Retire, SharedKey, Skip
from airflow_provider_mlconnector.operators.reconcile import Reconciliation
from airflow_provider_mlconnector.pairs import people, variables

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.watermarks import Window

SETTINGS_VARIABLE = "mlconnector_bamboohr_to_freshbooks"
EMPLOYEE_FIELDS = (
    "firstName",
    "lastName",
    "preferredName",
    "workEmail",
    "jobTitle",
    "department",
    "division",
    "status",
    "employmentHistoryStatus",
    "hireDate",
    "terminationDate",
)
#: What tags an expense with a department in its notes; any department, any case, ours or by hand.
MARKER = re.compile(r"\[\s*dept\s*:\s*([^\]]*?)\s*\]", re.IGNORECASE)
EMAIL_IN_TEXT = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
CARRIERS = ("notes", "project")


# ---------------------------------------------------------------------------------- settings


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """The user's opt-ins, from the Airflow Variable :data:`SETTINGS_VARIABLE`."""

    invite_team_members: bool = False
    retire_staff: bool = False
    department_carrier: str = "notes"

    @classmethod
    def load(cls) -> Settings:
        raw = variables.json_mapping(SETTINGS_VARIABLE)
        unknown = sorted(set(raw) - {"invite_team_members", "retire_staff", "department_carrier"})
        carrier = raw.get("department_carrier", "notes").strip().lower()
        if unknown or carrier not in CARRIERS:
            raise ConfigurationError(
                f"Variable {SETTINGS_VARIABLE}: unknown keys {unknown} or department_carrier {carrier!r} "
                f"(expected one of {CARRIERS})"
            )
        return cls(
            invite_team_members=_flag(raw.get("invite_team_members", False)),
            retire_staff=_flag(raw.get("retire_staff", False)),
            department_carrier=carrier,
        )


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


# ---------------------------------------------------------------------------------- employees


def bamboo_date(value: object) -> date | None:
    """A BambooHR date; ``"0000-00-00"``, empty or null mean none."""
    text = str(value or "").strip()
    if not text or text.startswith("0000"):
        return None
    return date.fromisoformat(text[:10])


def employment_ended(employee: Mapping[str, Any], today: date) -> str | None:
    """Why the employee no longer works here as of ``today``, or None while they do."""
    if str(employee.get("action") or "").lower() == "deleted":
        return "the employee was deleted in BambooHR"
    ends = bamboo_date(employee.get("terminationDate"))
    hired = bamboo_date(employee.get("hireDate"))
    rehired = ends is not None and hired is not None and hired > ends
    if ends is not None and not rehired:
        # A future-dated termination takes effect on its date, whatever the status says now.
        return f"terminated on {ends.isoformat()} in BambooHR" if ends <= today else None
    if str(employee.get("status") or "").strip().lower() == "inactive":
        return "the employee is Inactive in BambooHR"
    if str(employee.get("employmentHistoryStatus") or "").strip().lower() == "terminated":
        return "the employee's employment status is Terminated in BambooHR"
    return None


def work_email(employee: Mapping[str, Any]) -> str:
    """The work e-mail, the key that links a person everywhere; none is a dead letter."""
    email = str(employee.get("workEmail") or "").strip()
    if not email:
        raise MappingError(
            f"employee {employee['id']} ({full_name(employee) or 'no name'}) has no work e-mail in BambooHR: "
            "people are matched in FreshBooks by e-mail only; add it in BambooHR",
            kind="missing_email",
        )
    return email


def full_name(employee: Mapping[str, Any]) -> str:
    return f"{employee.get('firstName') or ''} {employee.get('lastName') or ''}".strip()


def read_employees(bamboo: BambooHRHook, window: Window) -> Iterator[Record]:
    """Employees changed in the window (plus terminations that took effect in it), with the named fields."""
    if window.start is None:
        yield from bamboo.iter_employees(EMPLOYEE_FIELDS)
        return
    changes = bamboo.get_changed_employees(window.start).get("employees") or {}
    changed = changes.values() if isinstance(changes, Mapping) else changes
    deleted = {str(c["id"]) for c in changed if str(c.get("action") or "").lower() == "deleted"}
    wanted = {str(c["id"]) for c in changed} - deleted
    wanted |= terminations_due(bamboo, window.start.date(), window.end.date())
    for employee_id in sorted(deleted):
        yield {"id": employee_id, "action": "Deleted"}  # gone from BambooHR: no fields to read
    if wanted:
        yield from bamboo.iter_employees(EMPLOYEE_FIELDS, employee_ids=sorted(wanted))


def terminations_due(bamboo: BambooHRHook, first: date, last: date) -> set[str]:
    """Ids of employees whose termination date falls within ``first``..``last`` (one small report)."""
    due = set()
    for row in bamboo.iter_employees(["terminationDate"]):
        ends = bamboo_date(row.get("terminationDate"))
        if ends is not None and first <= ends <= last:
            due.add(str(row["id"]))
    return due


def fetch_employee(bamboo: BambooHRHook, employee_id: str) -> Record:
    return bamboo.get_employee(employee_id, EMPLOYEE_FIELDS)


# ---------------------------------------------------------------------------------- person (bill vendor)


def person_payload(employee: Record, ctx: Ctx) -> Outcome:
    ended = employment_ended(employee, ctx.reference)
    if ended is not None:
        return Retire(ended)
    email = work_email(employee)
    role = ", ".join(str(employee[k]) for k in ("jobTitle", "department") if employee.get(k))
    return people.person_vendor_payload(
        email,
        first_name=str(employee.get("firstName") or ""),
        last_name=str(employee.get("lastName") or ""),
        extra={"note": f"{people.PERSON_NOTE} - {role}" if role else people.PERSON_NOTE},
    )


def compare_person(employee: Record, vendor: Record) -> list[str]:
    """Drift between an employee and the bill vendor they became (the reconciliation report)."""
    try:
        wanted = work_email(employee)
    except MappingError:
        return ["the employee has no work e-mail in BambooHR any more"]
    problems = []
    email = str(vendor.get("primary_contact_email") or "")
    if people.person_key(email) != people.person_key(wanted):
        problems.append(f"e-mail differs: BambooHR {wanted}, FreshBooks {email or 'none'}")
    ended = employment_ended(employee, utc_today())
    active_in_freshbooks = int(vendor.get("vis_state") or 0) == VisState.ACTIVE
    if ended is None and not active_in_freshbooks:
        problems.append("works here in BambooHR, but the bill vendor is deleted or archived in FreshBooks")
    if ended is not None and active_in_freshbooks:
        problems.append(f"{ended}, but the bill vendor is still active in FreshBooks")
    return problems


def person_key(employee: Record, payload: Record) -> str:
    return people.person_key(payload["primary_contact_email"])


def update_person(freshbooks: FreshBooksHook, vendor_id: str, payload: Record) -> Record:
    """Bring the vendor up to date; restore it first when it was soft-deleted (a rehire)."""
    current = freshbooks.bill_vendors.get(vendor_id)
    key = people.person_key(payload["primary_contact_email"])
    if people.vendor_email_key(current) != key:
        holder = people.find_person_vendor(freshbooks, key)
        if holder is not None and people.vendor_id(holder) != vendor_id:
            raise RecordError(
                f"the new work e-mail {key} already belongs to FreshBooks bill vendor {people.vendor_id(holder)} "
                f"({holder.get('vendor_name')}); merge the two in FreshBooks (nothing was written)",
                kind="duplicate_natural_key",
            )
    if int(current.get("vis_state") or 0) != VisState.ACTIVE:
        freshbooks.bill_vendors.restore(vendor_id)
    return freshbooks.bill_vendors.update(vendor_id, payload)


# ---------------------------------------------------------------------------------- staff (team members)


@dataclass(frozen=True)
class StaffReference:
    """Read once per task: who has a FreshBooks staff record or team member, by person key."""

    today: date
    settings: Settings
    staff: Mapping[str, str]
    team_members: frozenset[str] = field(default_factory=frozenset)


def staff_reference(bamboo: BambooHRHook, freshbooks: FreshBooksHook) -> StaffReference:
    members = frozenset(
        key for member in freshbooks.team_members.list(active=True) if (key := _key_or_none(member.get("email")))
    )
    return StaffReference(utc_today(), Settings.load(), staff_ids_with_retired(freshbooks), members)


def staff_ids_with_retired(freshbooks: FreshBooksHook) -> dict[str, str]:
    """Staff ids by person key, soft-deleted ones too: a rehire finds the record it must restore."""
    retired: dict[str, str] = {}
    for member in freshbooks.staff.list(vis_state=VisState.DELETED):
        if (key := _key_or_none(member.get("email"))) is not None:
            retired.setdefault(key, str(member.get("id") or member["userid"]))
    return {**retired, **people.staff_ids_by_key(freshbooks)}


def _key_or_none(email: object) -> str | None:
    try:
        return people.person_key(email)
    except MappingError:
        return None


def staff_link(employee: Record, ctx: Ctx) -> Outcome:
    reference: StaffReference = ctx.reference
    ended = employment_ended(employee, reference.today)
    if ended is not None:
        if reference.settings.retire_staff:
            return Retire(ended)
        return Skip(f"{ended}; their FreshBooks staff record is left alone (setting retire_staff is off)")
    email = str(employee.get("workEmail") or "").strip()
    if not email:
        return Skip("no work e-mail (the person is dead-lettered)")
    key = people.person_key(email)
    if key in reference.staff:
        return {"email": key}
    if reference.settings.invite_team_members and key not in reference.team_members:
        return {"email": key, "invite": True}
    name = full_name(employee) or email
    where = "their team member has no staff record yet" if key in reference.team_members else "no team member"
    raise NotLinkedYetError(
        f"{where} with the e-mail {email} in FreshBooks: add {name} as an Unassigned team member in FreshBooks "
        "(Settings > Team Members) so expenses can be attributed to them; inviting is opt-in (invite_team_members)"
    )


def staff_key(employee: Record, payload: Record) -> str:
    return str(payload["email"])


def staff_by_key(freshbooks: FreshBooksHook, payloads: list[Record]) -> dict[str, Record]:
    return {key: {"id": staff_id} for key, staff_id in staff_ids_with_retired(freshbooks).items()}


def find_staff(freshbooks: FreshBooksHook, key: str) -> Record | None:
    return staff_by_key(freshbooks, []).get(key)


INVITED = "invited:"


def invite(freshbooks: FreshBooksHook, payload: Record) -> Record:
    """Only reached for ``invite`` payloads: the staff record appears when the person accepts."""
    if not payload.get("invite"):
        raise RecordError(
            f"the FreshBooks staff record of {payload['email']} disappeared between match and write; rerun",
            kind="missing_in_target",
        )
    freshbooks.invite_team_member(str(payload["email"]))
    return {"id": f"{INVITED}{payload['email']}"}


def _staff_id(freshbooks: FreshBooksHook, target_id: str) -> str | None:
    """The staff id behind a link; an invitation has one once the person accepted."""
    if not target_id.startswith(INVITED):
        return target_id
    return staff_ids_with_retired(freshbooks).get(target_id.removeprefix(INVITED))


def restore_staff(freshbooks: FreshBooksHook, target_id: str, payload: Record) -> None:
    """A link has nothing to write; after a retired staff record (a rehire) it is restored."""
    staff_id = _staff_id(freshbooks, target_id)
    if staff_id is not None and int(freshbooks.staff.get(staff_id).get("vis_state") or 0) != VisState.ACTIVE:
        freshbooks.staff.restore(staff_id)


def retire_staff(freshbooks: FreshBooksHook, target_id: str) -> None:
    staff_id = _staff_id(freshbooks, target_id)
    if staff_id is not None:
        freshbooks.staff.delete(staff_id)


# ---------------------------------------------------------------------------------- expense (department tag)


@dataclass(frozen=True)
class TagReference:
    """Read once per task: each employee's department by staff id and by work e-mail."""

    carrier: str
    by_staff: Mapping[str, str]
    by_email: Mapping[str, str]
    projects: Mapping[str, str] = field(default_factory=dict)

    def department_of(self, expense: Mapping[str, Any]) -> str | None:
        staff = str(expense.get("staffid") or "")
        if staff in self.by_staff:
            return self.by_staff[staff]
        for email in EMAIL_IN_TEXT.findall(str(expense.get("notes") or "")):
            if email.casefold() in self.by_email:
                return self.by_email[email.casefold()]
        return None


def departments_by_email(employees: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Work e-mail -> department; an e-mail two employees share is left out (attributed to nobody)."""
    found: dict[str, str] = {}
    shared: set[str] = set()
    for employee in employees:
        email = str(employee.get("workEmail") or "").strip().casefold()
        department = str(employee.get("department") or "").strip()
        if not email:
            continue
        if email in found:
            shared.add(email)
        found[email] = department
    return {k: v for k, v in found.items() if k not in shared and v}


def tag_reference(bamboo: BambooHRHook, freshbooks: FreshBooksHook) -> TagReference:
    settings = Settings.load()
    by_email = departments_by_email(bamboo.iter_employees(["workEmail", "department"]))
    staff = people.staff_ids_by_key(freshbooks)
    by_staff = {staff_id: by_email[key] for key, staff_id in staff.items() if key in by_email}
    projects: dict[str, str] = {}
    if settings.department_carrier == "project":
        for project in freshbooks.projects.list(internal=True):
            projects.setdefault(str(project.get("title") or ""), str(project["id"]))
    return TagReference(settings.department_carrier, by_staff, by_email, projects)


def is_tagged(expense: Mapping[str, Any], carrier: str) -> bool:
    """Whether the expense already says its department (never overwritten)."""
    if MARKER.search(str(expense.get("notes") or "")):
        return True
    return carrier == "project" and bool(expense.get("modern_projectid") or expense.get("projectid"))


def with_marker(notes: str, department: str) -> str:
    marker = f"[dept: {department}]"
    return f"{notes.rstrip()}\n{marker}" if notes.strip() else marker


def tag_payload(expense: Record, ctx: Ctx) -> Outcome:
    reference: TagReference = ctx.reference
    if is_tagged(expense, reference.carrier):
        return Skip("the expense already carries a department; it is kept")
    department = reference.department_of(expense)
    if department is None:
        return Skip("the expense is not attributed to a BambooHR employee with a department")
    if reference.carrier == "project":
        project = reference.projects.get(department)
        if project is None:
            raise MappingError(
                f"no internal FreshBooks project is titled exactly '{department}' (the BambooHR department): "
                "create it in FreshBooks, then replay this dead letter",
                kind="unmapped_department",
            )
        return {"expenseid": str(expense["id"]), "modern_projectid": int(project)}
    return {"expenseid": str(expense["id"]), "notes": with_marker(str(expense.get("notes") or ""), department)}


def freshbooks_of(bamboo: BambooHRHook) -> FreshBooksHook:
    """The pair's FreshBooks hook, for the one entity whose records live in the target.

    The engine reads an entity's records from the pair's source (BambooHR); expenses to tag live
    in FreshBooks, so this entity reads them through the pair's FreshBooks connection itself.
    """
    from airflow_provider_mlconnector.operators.dag import conn_id

    return FreshBooksHook(conn_id(FreshBooksHook), state_store=bamboo.state)


def read_untagged_expenses(bamboo: BambooHRHook, window: Window) -> Iterator[Record]:
    """Every attributed expense without a department yet (FreshBooks documents no updated-since filter)."""
    freshbooks = freshbooks_of(bamboo)
    reference = tag_reference(bamboo, freshbooks)
    for expense in freshbooks.expenses.list():
        if not is_tagged(expense, reference.carrier) and reference.department_of(expense) is not None:
            yield expense


def tag_key(expense: Record, payload: Record) -> str:
    """``<carrier>:<expense id>``: the lookup after a lost answer must know which field to look at."""
    carrier = "project" if "modern_projectid" in payload else "notes"
    return f"{carrier}:{payload['expenseid']}"


def find_tagged(freshbooks: FreshBooksHook, key: str) -> Record | None:
    """The expense once it carries a department (a create whose answer was lost did tag it)."""
    carrier, _, expense_id = key.partition(":")
    expense = freshbooks.expenses.get(expense_id)
    return expense if is_tagged(expense, carrier) else None


def tag_expense(freshbooks: FreshBooksHook, payload: Record) -> Record:
    """Tagging "creates" nothing: it writes the one field that carries the department onto the expense."""
    changes = {k: v for k, v in payload.items() if k != "expenseid"}
    return freshbooks.expenses.update(payload["expenseid"], changes)


PAIR = Pair(
    name="bamboohr_to_freshbooks",
    source=BambooHRHook,
    target=FreshBooksHook,
    doc=__doc__ or "",
    description="BambooHR employees into FreshBooks bill vendors and staff links; departments onto expenses",
    entities=(
        Entity(
            "person",
            read=read_employees,
            fetch=fetch_employee,
            prepare=lambda bamboo, freshbooks: utc_today(),
            transform=person_payload,
            natural_key=person_key,
            index=people.person_vendors_by_key,
            find=people.find_person_vendor,
            create=lambda freshbooks, payload: freshbooks.bill_vendors.create(payload),
            # A vendor found by e-mail (typed by hand, or made by the Expensify pair) gets this
            # pair's name and job title; update_person restores it first when it was soft-deleted.
            update_matches=True,
            update=update_person,
            retire=lambda freshbooks, vendor_id: freshbooks.bill_vendors.delete(vendor_id),
            target_id=people.vendor_id,
            shared=SharedKey(people.SHARED_KEY),
            reconcile=Reconciliation(
                fetch_target=lambda freshbooks, vendor_id: freshbooks.bill_vendors.get(vendor_id),
                compare=compare_person,
            ),
        ),
        Entity(
            "staff",
            after=("person",),
            read=read_employees,
            fetch=fetch_employee,
            prepare=staff_reference,
            transform=staff_link,
            natural_key=staff_key,
            index=staff_by_key,
            find=find_staff,
            create=invite,
            update=restore_staff,
            retire=retire_staff,
        ),
        Entity(
            "expense",
            after=("staff",),
            read=read_untagged_expenses,
            fetch=lambda bamboo, expense_id: freshbooks_of(bamboo).expenses.get(expense_id),
            prepare=tag_reference,
            transform=tag_payload,
            natural_key=tag_key,
            find=find_tagged,
            create=tag_expense,
            update=lambda freshbooks, expense_id, payload: tag_expense(freshbooks, payload),
        ),
    ),
)
