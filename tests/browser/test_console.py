"""The console in Debian's Chromium against the real services, broker and database (issue 9's scenarios)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from services.console.i18n import po_path
from tests.support.stack import Stack

pytestmark = pytest.mark.browser

# ms: a queue or case page shows a change by itself, without a reload (checked by a marker the
# reload would erase). It polls every second, so the change shows within about 1 s plus a
# request; that speed is a figure for a benchmark, not a pass/fail here: a loaded machine's
# database can take longer, and the test must not fail on a noisy machine.
LIVE = 15_000


def api(stack: Stack, service: str, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method, stack.urls[service] + path, headers={"authorization": f"Bearer dev-{who}"}, timeout=10, **kw
    )


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    """Poll a condition (not a clock): the pipeline intake -> Kafka -> casework takes a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("condition not met")


def report(stack: Stack, name: str, *, category: str = "unpaid_wages", mission: str = "kbri-seoul") -> str:
    """An incident through intake's API; the id of the case it opens."""
    body = {
        "country": "KR",
        "worker": {"full_name": name},
        "category": category,
        "severity": "high",
        "occurred_at": "2026-01-05T09:00:00+09:00",
    }
    r = api(stack, "intake", "POST", "/v1/incidents", mission, json=body)
    assert r.status_code == 202, r.text
    iid = r.json()["incident_id"]
    return wait_for(lambda: _case_of(stack, iid))  # type: ignore[no-any-return]


def _case_of(stack: Stack, incident_id: str) -> str | None:
    found = api(
        stack, "casework", "GET", "/v1/cases", "officer-ani", params={"incident_id": incident_id}
    ).json()
    return found[0]["case_id"] if found else None


def fill_report(
    page: Any, *, name: str, country: str = "KR", when: str = "2026-01-05T09:00", category: str = "injury"
) -> None:
    page.fill("#f-country", country)
    page.fill("#f-occurred_at", when)
    page.select_option("#f-category", category)
    page.select_option("#f-severity", "high")
    page.fill("#f-worker-full_name", name)


def test_1_a_report_reaches_the_desk_live_and_each_step_is_on_the_timeline(
    stack: Stack, open_as: Any
) -> None:
    desk = open_as("officer-ani")
    desk.go("/desk?queue=east_asia-general")
    mission = open_as("kbri-seoul", tz="Asia/Seoul")
    mission.go("/mission/report")
    name = f"Welder {uuid.uuid4().hex[:6]}"
    fill_report(mission.page, name=name)
    mission.page.fill("#f-narrative", "Injured at the shipyard at 23:00")
    mission.page.click("#send-report")
    mission.page.wait_for_url(re.compile(r"/mission\?reported="))
    incident_id = mission.page.url.split("reported=")[1]
    case_id = wait_for(lambda: _case_of(stack, incident_id))

    # The desk page, never reloaded, shows the new case in the right queue by itself.
    desk.page.evaluate("window.__notReloaded = true")
    row = desk.page.locator(f"#queue-cases tr[data-case='{case_id}']")
    expect(row).to_contain_text(name, timeout=LIVE)
    assert desk.page.evaluate("window.__notReloaded === true"), "the page was reloaded"

    desk.page.click(f"#queue-cases tr[data-case='{case_id}'] a")
    desk.page.click("button[data-button=claim]")
    expect(desk.page.locator("#case-status")).to_contain_text("diambil")
    desk.page.click("button[data-button=acknowledge]")
    expect(desk.page.locator("#case-status")).to_contain_text("sedang ditangani")
    desk.page.fill("#note-text", "Called the employer; the worker is in hospital")
    desk.page.click("button[data-button=notes]")
    timeline = desk.page.locator("#case-timeline")
    for kind, by in (
        ("opened", "system"),
        ("claimed", "officer-ani"),
        ("acknowledged", "officer-ani"),
        ("note", "officer-ani"),
    ):
        entry = timeline.locator(f"li[data-kind={kind}]").first
        expect(entry.locator(".by")).to_have_text(by)
        expect(entry.locator("time")).to_have_attribute(
            "datetime", re.compile(r"^2026-01-05T08:00:00\+00:00$")
        )
        expect(entry.locator("time")).to_contain_text("+07:00")  # the reader's zone, offset shown
    expect(timeline).to_contain_text("Called the employer")
    assert not desk.errors and not mission.errors


def test_2_field_errors_sit_next_to_their_fields_and_a_double_click_makes_one_incident(
    stack: Stack, open_as: Any
) -> None:
    mission = open_as("kbri-seoul", tz="Asia/Seoul", lang="en")
    mission.go("/mission/report")
    fill_report(mission.page, name="Siti", country="JP", when="2026-01-06T09:00", category="injury")
    mission.page.select_option("#f-category", "")
    mission.page.click("#send-report")
    # checked in the page before sending: the empty category and the future date
    expect(mission.page.locator("#err-category")).to_have_text("This field is required.")
    expect(mission.page.locator("#err-occurred_at")).to_have_text("This is in the future.")
    expect(mission.page.locator("#f-category")).to_have_attribute("aria-invalid", "true")
    assert mission.page.url.endswith("/mission/report")
    # the service's own refusal: JP is outside KBRI Seoul's jurisdiction
    mission.page.select_option("#f-category", "injury")
    mission.page.fill("#f-occurred_at", "2026-01-05T09:00")
    mission.page.click("#send-report")
    expect(mission.page.locator("#err-country")).to_contain_text("outside this mission's jurisdiction")
    expect(mission.page.locator("#f-country")).to_have_attribute("aria-invalid", "true")

    # Without the page's script, the service's errors come back next to the same fields.
    bare = open_as("kbri-seoul", tz="Asia/Seoul", js=False, lang="en")
    bare.go("/mission/report")
    fill_report(bare.page, name="Siti", when="2026-01-06T09:00")
    bare.page.click("#send-report")
    expect(bare.page.locator("#err-occurred_at")).to_contain_text("in the future")
    fill_report(bare.page, name="Siti")
    bare.page.select_option("#f-category", "")
    bare.page.click("#send-report")
    expect(bare.page.locator("#err-category")).not_to_be_empty()

    # A double click (no script to disable the button) sends twice; the form's key makes one incident.
    name = f"Double {uuid.uuid4().hex[:6]}"
    bare.go("/mission/report")
    fill_report(bare.page, name=name)
    bare.page.dblclick("#send-report")
    bare.page.wait_for_url(re.compile(r"/mission\?reported="))
    listed = api(stack, "intake", "GET", "/v1/incidents", "kbri-seoul", params={"limit": 500}).json()
    assert [i["worker_name"] for i in listed].count(name) == 1
    assert not mission.errors


def test_3_reassign_with_a_reason_auditors_see_no_buttons_missions_see_only_their_jurisdiction(
    stack: Stack, open_as: Any
) -> None:
    name = f"Reassigned {uuid.uuid4().hex[:6]}"
    case_id = report(stack, name)
    assert (
        api(stack, "casework", "POST", f"/v1/cases/{case_id}/claim", "officer-ani", json={}).status_code
        == 200
    )

    boss = open_as("supervisor-dewi")
    boss.go(f"/cases/{case_id}")
    boss.page.select_option("#assignee", "officer-budi")
    boss.page.fill("#reason-reassign", "Budi speaks Korean")
    boss.page.click("button[data-button=reassign]")
    expect(boss.page.locator("#case-assignee")).to_have_text("officer-budi")
    entry = boss.page.locator("#case-timeline li[data-kind=reassigned]")
    expect(entry).to_contain_text("Budi speaks Korean")
    expect(entry.locator(".by")).to_have_text("supervisor-dewi")

    auditor = open_as("auditor-fajar")
    auditor.go(f"/cases/{case_id}")
    expect(auditor.page.locator("#case-status")).to_be_visible()
    expect(auditor.page.locator("#case-actions")).to_have_count(0)
    expect(auditor.page.locator("button[data-button]")).to_have_count(0)

    tokyo = open_as("kbri-tokyo")
    response = tokyo.go(f"/cases/{case_id}")
    assert response.status == 404
    expect(tokyo.page.locator("#case-status")).to_have_count(0)
    assert name not in tokyo.page.content()
    seoul = open_as("kbri-seoul")
    seoul.go(f"/cases/{case_id}")
    expect(seoul.page.locator("#case-status")).to_be_visible()

    # claim next takes the head of the queue
    dead = report(stack, f"Remains {uuid.uuid4().hex[:6]}", category="death")
    budi = open_as("officer-budi")
    budi.go("/desk?queue=east_asia-death")
    budi.page.click("tr[data-queue=east_asia-death] button")
    budi.page.wait_for_url(re.compile(f"/cases/{dead}"))
    expect(budi.page.locator("#case-assignee")).to_have_text("officer-budi")


def _main_pages(stack: Stack) -> list[tuple[str, str]]:
    case_id = report(stack, f"Pages {uuid.uuid4().hex[:6]}")
    return [
        ("supervisor-dewi", "/desk"),
        ("supervisor-dewi", f"/cases/{case_id}"),
        ("supervisor-dewi", "/supervision"),
        ("supervisor-dewi", "/desk/mine"),
        ("officer-ani", "/repatriations"),
        ("registry-operator", "/registry"),
        ("region-dki", "/province"),
        ("kbri-seoul", "/mission"),
        ("kbri-seoul", "/mission/report"),
    ]


TEXTS = """() => {
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const n = walk.currentNode, t = n.textContent.trim();
    // data the services hold (names, ids, reasons, tags) is marked translate="no"
    if (t && !n.parentElement.closest('[translate=no], script, style')) out.push(t);
  }
  document.querySelectorAll('[aria-label], [placeholder]')
    .forEach(e => out.push(e.getAttribute('aria-label') || e.getAttribute('placeholder')));
  return out;
}"""


def test_4_the_pages_switch_to_bahasa_indonesia_and_back_with_nothing_left_untranslated(
    stack: Stack, open_as: Any
) -> None:
    with po_path("id").open("rb") as f:
        english = {m.id for m in read_po(f) if m.id and m.string and m.string != m.id}
    for user, path in _main_pages(stack):
        reader = open_as(user, lang="en")
        reader.go(path)
        expect(reader.page.locator("html")).to_have_attribute("lang", "en")
        reader.page.click("#switch-lang")
        expect(reader.page.locator("html")).to_have_attribute("lang", "id")
        assert reader.page.url.endswith(path)
        left = [t for t in reader.page.evaluate(TEXTS) if t in english]
        assert not left, f"{path} shows untranslated text in Bahasa Indonesia: {left}"
        reader.page.click("#switch-lang")
        expect(reader.page.locator("html")).to_have_attribute("lang", "en")


def test_5_the_desk_asks_the_mission_answers_and_the_answer_appears_on_the_case(
    stack: Stack, open_as: Any
) -> None:
    case_id = report(stack, f"Question {uuid.uuid4().hex[:6]}")
    desk = open_as("officer-ani")
    desk.go(f"/cases/{case_id}")
    desk.page.fill("#request-text", "Please visit the worker at the dormitory")
    desk.page.click("button[data-button=mission-requests]")
    expect(desk.page.locator("#case-requests")).to_contain_text("Please visit the worker")
    desk.page.evaluate("window.__notReloaded = true")

    mission = open_as("kbri-seoul", tz="Asia/Seoul")
    mission.go("/mission")
    card = mission.page.locator(".request", has_text="Please visit the worker")
    card.locator("textarea").fill("Visited on 5 January; the worker is safe")
    card.locator("button").click()
    mission.page.wait_for_url(re.compile(r"/mission\?answered=1"))

    # the desk's case page, never reloaded, shows the answer within 2 s
    expect(desk.page.locator("#case-requests .answer")).to_contain_text("the worker is safe", timeout=LIVE)
    assert desk.page.evaluate("window.__notReloaded === true"), "the case page was reloaded"


def _walk_to_handover(stack: Stack, name: str) -> str:
    body = {
        "kind": "living",
        "worker_key": uuid.uuid4().hex,
        "worker_name": name,
        "country": "KR",
        "home_province": "DKI Jakarta",
        "home_regency": "Jakarta Timur",
        "reason": "wants to go home after the injury",
    }
    r = api(stack, "repatriation", "POST", "/v1/repatriations", "officer-ani", json=body)
    assert r.status_code == 201, r.text
    rid = r.json()["repatriation_id"]
    owners = {"desk": "officer-ani", "mission": "kbri-seoul", "debarkation": "debarkation-cgk"}
    data = {
        "travel_document": {"document": "passport"},
        "exit_clearance": {"employer_release": True, "wages_settled": True, "immigration": True},
        "funding_approved": {"payer": "state", "recoverable": False},
        "travel_booked": {
            "flight": "GA 879",
            "arrival_at": "2026-01-07T17:00:00+07:00",
            "debarkation_point": "Soekarno-Hatta",
        },
        "onward_transport": {"escort": False},
    }
    for _ in range(15):
        doc = api(stack, "repatriation", "GET", f"/v1/repatriations/{rid}", "officer-ani").json()
        step = doc["current_step"]
        if step == "handed_over":
            return rid
        owner = next(s["owner"] for s in doc["steps"] if s["name"] == step)
        done = api(
            stack,
            "repatriation",
            "POST",
            f"/v1/repatriations/{rid}/steps/{step}/complete",
            owners[owner],
            json={"evidence": [f"DOC-{step}"], "data": data.get(step, {})},
        )
        assert done.status_code == 200, (step, done.text)
    raise AssertionError("the workflow did not reach the hand-over")


def test_6_a_province_sees_the_arriving_worker_and_the_hand_over_awaiting_its_witness(
    stack: Stack, open_as: Any
) -> None:
    name = f"Returning {uuid.uuid4().hex[:6]}"
    rid = _walk_to_handover(stack, name)
    province = open_as("region-dki")
    province.go("/province")
    expect(province.page.locator("#arriving")).to_contain_text(name)
    expect(province.page.locator("#arriving")).to_contain_text("GA 879")
    expect(province.page.locator("#awaiting-witness")).to_contain_text(name)
    # The province witnesses the hand-over from its page: the step's own form, only complete/fail.
    card = province.page.locator(f"#awaiting-witness li[data-repatriation='{rid}']")
    forms = card.locator("form[data-step-action]")
    assert sorted(forms.evaluate_all("fs => fs.map(f => f.dataset.stepAction)")) == ["complete", "fail"]
    done = card.locator("form[data-step-action=complete]")
    done.locator("textarea[name=evidence]").fill("BAST/DKI/2026/0007")
    done.locator("select[name='data.received_by']").select_option("family")
    done.locator("input[name='data.witness']").fill("Lurah Cempaka Putih")
    done.locator("button[type=submit]").click()
    province.page.wait_for_url(re.compile(r"/province\?done=complete"))
    expect(province.page.locator("#done")).to_be_visible()
    doc = api(stack, "repatriation", "GET", f"/v1/repatriations/{rid}", "officer-ani").json()
    handed = next(s for s in doc["steps"] if s["name"] == "handed_over")
    assert (handed["status"], handed["data"]["received_by"]) == ("done", "family")
    assert not province.errors
    board = open_as("officer-ani")
    board.go("/repatriations")
    expect(board.page.locator("#board-live")).to_contain_text(name)


def test_7_every_page_loads_without_console_errors_and_axe_finds_nothing_serious(
    stack: Stack, open_as: Any
) -> None:
    anonymous = open_as("officer-ani")
    anonymous.page.context.clear_cookies()
    anonymous.go("/sign-in")
    problems = {"/sign-in": anonymous.axe()}
    for user, path in _main_pages(stack):
        reader = open_as(user)
        response = reader.go(path)
        assert response.status == 200, path
        expect(reader.page.locator("h1")).to_be_visible()
        problems[f"{user} {path}"] = reader.axe()
        assert not reader.errors, (path, reader.errors)
    assert not any(problems.values()), problems


def test_8_a_mission_completes_the_travel_document_step_from_the_board_and_the_case_shows_the_next(
    stack: Stack, open_as: Any
) -> None:
    name = f"Homeward {uuid.uuid4().hex[:6]}"
    case_id = report(stack, name)
    body = {
        "kind": "living",
        "case_id": case_id,
        "worker_key": uuid.uuid4().hex,
        "worker_name": name,
        "country": "KR",
        "home_province": "DKI Jakarta",
        "reason": "wants to go home",
    }

    # repatriation learns of the case from casework's event: until then it refuses the start
    def start() -> httpx.Response | None:
        r = api(stack, "repatriation", "POST", "/v1/repatriations", "officer-ani", json=body)
        return r if r.status_code == 201 else None

    started = wait_for(start)
    rid = started.json()["repatriation_id"]
    item = f"li[data-repatriation='{rid}']"

    # The desk may neither complete nor skip the mission's step: no form for it on the board.
    desk = open_as("officer-ani", lang="en")
    desk.go("/repatriations")
    expect(desk.page.locator(item)).to_contain_text(name)
    expect(desk.page.locator(f"{item} form")).to_have_count(0)

    mission = open_as("kbri-seoul", tz="Asia/Seoul", lang="en")
    mission.go("/repatriations")
    row = mission.page.locator(item)
    row.locator("summary").click()
    forms = row.locator("form[data-step-action]")
    expect(forms).to_have_count(2)  # complete and fail; travel_document cannot be skipped
    assert sorted(forms.evaluate_all("fs => fs.map(f => f.dataset.stepAction)")) == ["complete", "fail"]
    assert not mission.axe()
    done = row.locator("form[data-step-action=complete]")
    done.locator("textarea[name=evidence]").fill("SPLP/SEL/2026/0042")
    done.locator("select[name='data.document']").select_option("splp")
    done.locator("button[type=submit]").click()
    mission.page.wait_for_url(re.compile(r"/repatriations\?done=complete"))
    expect(mission.page.locator("#done")).to_contain_text("Complete step")

    # The case page (the mission's and the desk's) shows the next step as the current one.
    mission.go(f"/cases/{case_id}")
    expect(mission.page.locator("[aria-current=step]")).to_contain_text("exit clearance")
    expect(mission.page.locator("li[data-step=travel_document]")).to_contain_text("kbri-seoul")
    assert not mission.axe()
    desk.go(f"/cases/{case_id}")
    expect(desk.page.locator("[aria-current=step]")).to_contain_text("exit clearance")
    assert not mission.errors and not desk.errors
    doc = api(stack, "repatriation", "GET", f"/v1/repatriations/{rid}", "officer-ani").json()
    travel = next(s for s in doc["steps"] if s["name"] == "travel_document")
    assert (travel["status"], travel["evidence"], travel["data"]) == (
        "done",
        ["SPLP/SEL/2026/0042"],
        {"document": "splp"},
    )

    # Nothing to re-route to yet (travel_booked lies ahead), but the desk may cancel, with a reason.
    desk.go(f"/cases/{case_id}")
    controls = desk.page.locator(f"div.workflow-actions[data-repatriation='{rid}']")
    expect(controls.locator("form[data-workflow-action=reroute]")).to_have_count(0)
    cancel = controls.locator("form[data-workflow-action=cancel]")
    cancel.locator("input[name=reason]").fill("the worker chose to stay with a new employer")
    cancel.locator("button[type=submit]").click()
    desk.page.wait_for_url(re.compile(r"\?done=cancel"))
    expect(desk.page.locator("#done")).to_contain_text("Cancel the repatriation")
    expect(desk.page.locator("div.workflow-actions")).to_have_count(0)  # nothing left to cancel
    doc = api(stack, "repatriation", "GET", f"/v1/repatriations/{rid}", "officer-ani").json()
    assert (doc["status"], doc["cancel_reason"]) == (
        "cancelled",
        "the worker chose to stay with a new employer",
    )
    assert not desk.errors


def test_9_an_officer_confirms_a_suggested_link_and_a_supervisor_undoes_the_merge(
    stack: Stack, open_as: Any
) -> None:
    name = f"Siti Kembar {uuid.uuid4().hex[:6]}"
    body = {"category": "unpaid_wages", "severity": "high", "occurred_at": "2026-01-05T09:00:00+03:00"}
    first = api(
        stack,
        "intake",
        "POST",
        "/v1/incidents",
        "kbri-riyadh",
        json={**body, "country": "SA", "worker": {"full_name": name}},
    )
    second = api(
        stack,
        "intake",
        "POST",
        "/v1/incidents",
        "kbri-kuala-lumpur",
        json={**body, "country": "MY", "worker": {"full_name": name}},
    )
    a, b = first.json()["incident_id"], second.json()["incident_id"]
    case_a, case_b = wait_for(lambda: _case_of(stack, a)), wait_for(lambda: _case_of(stack, b))
    assert case_a != case_b  # a name alone joins nobody; the officer merges case_a into case_b

    desk = open_as("officer-ani", lang="en")
    desk.go(f"/cases/{case_b}")
    card = desk.page.locator(f"#case-suggestions li[data-suggested='{a}']")
    expect(card).to_contain_text("kbri-riyadh")
    assert not desk.axe()
    confirm = card.locator("form[data-decision=confirm]")
    confirm.locator("input[name=reason]").fill("both missions sent the same passport photo")
    confirm.locator("button[type=submit]").click()
    desk.page.wait_for_url(re.compile(r"\?done=confirm"))
    expect(desk.page.locator("#case-merged-from")).to_contain_text(case_a[:8])
    expect(desk.page.locator("#case-suggestions")).to_have_count(0)

    boss = open_as("supervisor-dewi", lang="en")
    boss.go(f"/cases/{case_a}")
    expect(boss.page.locator("#case-status")).to_contain_text("closed")
    expect(boss.page.locator("#case-merged-into")).to_contain_text(case_b[:8])
    undo = boss.page.locator("form[data-action=unmerge]")
    undo.locator("input[name=reason]").fill("two different women after all")
    undo.locator("button[type=submit]").click()
    boss.page.wait_for_url(re.compile(r"\?done=unmerge"))
    expect(boss.page.locator("#case-merged-into")).to_have_count(0)
    assert not desk.errors and not boss.errors
    back = api(stack, "casework", "GET", f"/v1/cases/{case_b}", "officer-ani").json()
    assert back["incident_ids"] == [b] and back.get("merged_from") == []
