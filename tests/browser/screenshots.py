"""`make screenshots`: the console's main pages in both languages, as PNGs in docs/console/.

Starts the whole system in one namespace on the real broker and database, puts a few reports,
a claimed case, a question to a mission and a repatriation at its hand-over into it, then
photographs each page in Bahasa Indonesia and in English with Debian's Chromium.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import ARGS, CHROMIUM
from tests.browser.test_console import _walk_to_handover, api, report
from tests.support.infra import find_or_start
from tests.support.stack import Stack

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"
PAGES = [
    ("sign-in", None, "/sign-in", "Asia/Jakarta"),
    ("mission-report", "kbri-seoul", "/mission/report", "Asia/Seoul"),
    ("mission", "kbri-seoul", "/mission", "Asia/Seoul"),
    ("desk", "officer-ani", "/desk?queue=east_asia-general", "Asia/Jakarta"),
    ("case", "officer-ani", "/cases/{case}", "Asia/Jakarta"),
    ("supervision", "supervisor-dewi", "/supervision", "Asia/Jakarta"),
    ("repatriations", "officer-ani", "/repatriations", "Asia/Jakarta"),
    ("province", "region-dki", "/province", "Asia/Jakarta"),
    ("registry", "registry-operator", "/registry", "Asia/Jakarta"),
]


def main() -> int:
    endpoints, _ = find_or_start()
    stack = Stack(endpoints.kafka, endpoints.mongodb)
    stack.start()
    try:
        for name in ("Siti Rahayu", "Dewi Lestari", "Agus Santoso"):
            report(stack, name)
        case = report(stack, "Budi Hartono")
        api(stack, "casework", "POST", f"/v1/cases/{case}/claim", "officer-ani", json={})
        api(stack, "casework", "POST", f"/v1/cases/{case}/acknowledge", "officer-ani", json={})
        api(
            stack,
            "casework",
            "POST",
            f"/v1/cases/{case}/notes",
            "officer-ani",
            json={"text": "Called the employer"},
        )
        api(
            stack,
            "casework",
            "POST",
            f"/v1/cases/{case}/mission-requests",
            "officer-ani",
            json={"text": "Please visit the worker at the dormitory"},
        )
        _walk_to_handover(stack, f"Rahmat {uuid.uuid4().hex[:4]}")
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            for lang in ("id", "en"):
                for key, user, path, tz in PAGES:
                    ctx = browser.new_context(timezone_id=tz, viewport={"width": 1280, "height": 900})
                    ctx.add_cookies([{"name": "lindungi_lang", "value": lang, "url": stack.urls["console"]}])
                    page = ctx.new_page()
                    if user:
                        page.goto(stack.urls["console"] + "/sign-in")
                        page.fill("#user_id", user)
                        page.fill("#credential", f"dev-{user}")
                        page.click("button[type=submit].primary")
                        page.wait_for_url(lambda url: "/sign-in" not in url)
                    page.goto(stack.urls["console"] + path.format(case=case))
                    page.wait_for_selector("h1")
                    target = OUT / f"{key}-{lang}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target.relative_to(OUT.parents[1]))
                    ctx.close()
            browser.close()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
