"""`python -m deploy.local.smoke`: against a running system (`make run`), post an incident as
KBRI Seoul and time how long until casework shows its case. Prints what it saw."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

INTAKE = "http://127.0.0.1:8002"
CASEWORK = "http://127.0.0.1:8003"


def main(rounds: int = 5) -> int:
    """Post `rounds` incidents one after another and report each post-to-case latency."""
    mission = {"Authorization": "Bearer dev-kbri-seoul"}
    officer = {"Authorization": "Bearer dev-officer-ani"}
    latencies = []
    for i in range(rounds):
        incident = {
            "mission_id": "kbri-seoul",
            "country": "KR",
            "place": "Ansan, Gyeonggi-do",
            "worker": {"full_name": f"Smoke Test Worker {i}", "date_of_birth": "1995-03-14"},
            "category": "unpaid_wages",
            "severity": "high",
            "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "narrative": "Smoke test from deploy/local/smoke.py",
        }
        t0 = time.monotonic()
        r = httpx.post(f"{INTAKE}/v1/incidents", json=incident, headers=mission, timeout=10)
        if r.status_code >= 300:
            print(f"intake answered {r.status_code}: {r.text}")
            return 1
        incident_id = r.json()["incident_id"]
        while time.monotonic() - t0 < 30:
            found = httpx.get(
                f"{CASEWORK}/v1/cases", params={"incident_id": incident_id}, headers=officer, timeout=5
            )
            if found.status_code == 200 and found.json():
                break
            time.sleep(0.02)
        else:
            print(f"no case for incident {incident_id} within 30 s")
            return 1
        latencies.append(time.monotonic() - t0)
        print(f"incident {incident_id}: case readable after {latencies[-1] * 1000:.0f} ms")
    print(f"max {max(latencies) * 1000:.0f} ms over {rounds} incidents")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
