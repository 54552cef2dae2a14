"""Union-find that refuses joins breaking a rule: two NCT IDs, a manual reject, or a
scored pair across the two clusters that contradicts itself (see DedupConfig.veto)."""

from __future__ import annotations

from typing import Literal

UnionOutcome = Literal["joined", "same", "nct_conflict", "manual_reject", "score_conflict"]


class GuardedUnionFind:
    """Items 0..n-1.  Each root knows its cluster's (single) NCT code, -1 when none, and the
    items its cluster must never join, with the reason."""

    def __init__(self, nct_codes: list[int]) -> None:
        self.parent = list(range(len(nct_codes)))
        self.nct = list(nct_codes)  # meaningful at roots only
        self.cannot: dict[int, dict[int, str]] = {}  # root -> {item kept apart: reason}

    def find(self, item: int) -> int:
        parent = self.parent
        root = item
        while parent[root] != root:
            root = parent[root]
        while parent[item] != root:  # path compression
            parent[item], item = root, parent[item]
        return root

    def forbid(self, a: int, b: int, reason: str = "manual_reject") -> None:
        """Keep a's and b's clusters apart from now on (a manual reject wins over other reasons)."""
        for x, y in ((a, b), (b, a)):
            partners = self.cannot.setdefault(self.find(x), {})
            if partners.get(y) != "manual_reject":
                partners[y] = reason

    def check(self, ra: int, rb: int) -> UnionOutcome:
        if ra == rb:
            return "same"
        na, nb = self.nct[ra], self.nct[rb]
        if na >= 0 and nb >= 0 and na != nb:
            return "nct_conflict"
        ca, cb = self.cannot.get(ra), self.cannot.get(rb)
        if ca and cb and len(cb) < len(ca):
            ca, cb, ra, rb = cb, ca, rb, ra  # scan the smaller list
        if ca:
            reasons = {reason for x, reason in ca.items() if self.find(x) == rb}
            if reasons:
                return "manual_reject" if "manual_reject" in reasons else "score_conflict"
        return "joined"

    def union(self, a: int, b: int) -> UnionOutcome:
        ra, rb = self.find(a), self.find(b)
        outcome = self.check(ra, rb)
        if outcome != "joined":
            return outcome
        keep, gone = (ra, rb) if ra < rb else (rb, ra)  # smaller root wins: order-independent ids
        self.parent[gone] = keep
        if self.nct[keep] < 0:
            self.nct[keep] = self.nct[gone]
        moved = self.cannot.pop(gone, None)
        if moved:
            kept = self.cannot.setdefault(keep, {})
            for item, reason in moved.items():
                if kept.get(item) != "manual_reject":
                    kept[item] = reason
        return "joined"

    def roots(self) -> list[int]:
        return [self.find(i) for i in range(len(self.parent))]
