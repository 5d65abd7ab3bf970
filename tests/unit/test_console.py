"""The console's parts without I/O: the sealed session, navigation by role, catalogs, dates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from starlette.datastructures import FormData

from services.console import nav
from services.console.i18n import Formats, po_path, translations, zone_of
from services.console.pages.repatriation import completion
from services.console.session import DirectorySignIn, Sealer
from tests.support.harness import ROOT


def test_a_sealed_session_opens_again_and_an_altered_or_foreign_one_does_not() -> None:
    session = DirectorySignIn().authenticate("kbri-seoul", "dev-kbri-seoul")
    assert session is not None and session.countries == {"KR"} and session.has("mission")
    sealer = Sealer("secret-one", max_age_seconds=60)
    value = sealer.seal(session)
    assert "dev-kbri-seoul" not in value  # the credential is encrypted, not just signed
    assert sealer.open(value) == session
    assert sealer.open(value[:-4] + "AAAA") is None
    assert Sealer("secret-two", max_age_seconds=60).open(value) is None
    assert DirectorySignIn().authenticate("kbri-tokyo", "dev-kbri-seoul") is None
    assert DirectorySignIn().authenticate("kbri-seoul", "wrong") is None


def test_navigation_shows_only_the_pages_a_role_uses() -> None:
    keys = lambda *roles: [p.key for p in nav.pages_for(frozenset(roles))]  # noqa: E731
    assert keys("mission") == ["mission", "repatriation"]
    assert keys("officer") == ["desk", "mine", "notifications", "repatriation", "registry"]
    assert keys("auditor") == ["desk", "notifications", "supervision", "repatriation", "registry"]
    assert keys("region") == ["province"]
    assert keys("registry_operator") == ["registry"]
    assert nav.home_of(frozenset({"supervisor"})) == "/desk"


def test_every_string_of_the_console_is_in_both_catalogs_and_translated_into_bahasa_indonesia() -> None:
    method_map = [
        ("services/console/**.py", "python"),
        ("services/console/templates/**.html", "jinja2"),
    ]
    options = {"services/console/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    found = {
        msg if isinstance(msg, str) else msg[0]
        for _f, _l, msg, _c, _x in extract_from_dir(
            ROOT, method_map, options_map=options, keywords={"_": None, "N_": None, "gettext": None}
        )
    }
    assert len(found) > 200
    for locale in ("id", "en"):
        with po_path(locale).open("rb") as f:
            catalog = {m.id: m.string for m in read_po(f) if m.id}
        assert found <= set(catalog), f"{locale}: not in the catalog: {sorted(found - set(catalog))[:10]}"
    with po_path("id").open("rb") as f:
        untranslated = [m.id for m in read_po(f) if m.id and not m.string]
    assert not untranslated
    assert translations("id").ugettext("Sign in") == "Masuk"
    assert translations("en").ugettext("Sign in") == "Sign in"


def test_dates_are_shown_in_the_readers_zone_with_the_offset() -> None:
    now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    seoul = Formats("en", zone_of("Asia/Seoul", "Asia/Jakarta"), now)
    assert seoul.datetime("2026-01-05T08:00:00Z") == "5 Jan 2026, 17:00 +09:00"
    assert seoul.zone_label() == "Asia/Seoul (+09:00)"
    assert (
        Formats("id", zone_of("Nowhere/Else", "Asia/Jakarta"), now).datetime(now)
        == "5 Jan 2026, 15:00 +07:00"
    )
    assert seoul.until("2026-01-05T11:00:00+00:00") == "in 3 hours"
    assert seoul.overdue("2026-01-05T07:00:00+00:00")
    assert Formats("id", seoul.zone, now).until("2026-01-05T11:00:00+00:00") == "dalam 3 jam"
    # a mission's time reads as the mission sent it, whatever the reader's zone
    assert seoul.as_sent("2026-01-05T10:30:00-03:00") == "5 Jan 2026, 10:30 -03:00"
    assert seoul.as_sent("2026-01-05T08:00:00Z") == "5 Jan 2026, 08:00 +00:00"


def test_a_step_completion_form_becomes_the_body_the_repatriation_service_checks() -> None:
    form = FormData(
        [
            ("next", "/repatriations"),
            ("evidence", "AWB 123\n\n  PNR XY9  \n"),
            ("data.flight", " GA 879 "),
            ("kind.arrival_at", "time"),
            ("data.arrival_at", "2026-01-07T17:00"),
            ("kind.escort", "bool"),
            ("data.escort", "false"),
            ("data.debarkation_point", ""),
        ]
    )
    body = completion(form, zone_of("Asia/Seoul", "Asia/Jakarta"))
    assert body == {
        "evidence": ["AWB 123", "PNR XY9"],
        "data": {"flight": "GA 879", "arrival_at": "2026-01-07T17:00:00+09:00", "escort": False},
    }


def test_a_steps_recorded_times_show_as_the_mission_sent_them_and_its_stamps_in_the_readers_zone() -> None:
    from services.console.labels import LABELS
    from services.console.web import make_env

    t = translations("en")
    fmt = Formats("en", ZoneInfo("Asia/Jakarta"), datetime(2026, 11, 21, 6, 0, tzinfo=UTC))
    env = make_env()
    env.globals.update(_=t.ugettext, gettext=t.ugettext, ngettext=t.ungettext, fmt=fmt)
    env.globals["label"] = lambda v: t.ugettext(LABELS[v]) if v in LABELS else v
    macros = env.get_template("macros.html").module
    step = {
        "name": "travel_booked",
        "status": "done",
        "owner": "mission",
        "finished_at": "2026-11-21T01:00:00+00:00",  # the service's instant
        "actor": "kbri-seoul",
        "data": {"flight": "GA-879", "arrival_at": "2026-11-22T17:40:00+09:00", "debarkation_point": "CGK"},
    }
    html = str(macros.workflow_steps({"steps": [step], "current_step": None}))  # type: ignore[attr-defined]
    assert "21 Nov 2026, 08:00 +07:00" in html  # finished: in the reader's zone
    assert "Arrival time" in html and "22 Nov 2026, 17:40 +09:00" in html  # as Seoul wrote it
    assert "GA-879" not in html  # only the recorded times are shown on the step line
