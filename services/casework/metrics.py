"""casework's own metrics: claims and lease expiries, per queue (queues come from queues.yaml: bounded)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.service import Runtime


class CaseworkMetrics:
    def __init__(self, rt: Runtime) -> None:
        r = rt.metrics.registry
        self.claims = Counter(
            "lindungi_case_claims",
            "Cases claimed by desk officers, per queue and how (next: claim-next; direct: claim).",
            ["queue", "how"],
            registry=r,
        )
        self.lease_expiries = Counter(
            "lindungi_case_claim_lease_expiries",
            "Claims returned to their queue because their lease ran out unacknowledged.",
            ["queue"],
            registry=r,
        )


def of(rt: Runtime) -> CaseworkMetrics:
    """The casework metrics of this runtime (made once, on its registry)."""
    found = rt.metrics.parts.get("casework")
    if not isinstance(found, CaseworkMetrics):
        found = rt.metrics.parts["casework"] = CaseworkMetrics(rt)
    return found
