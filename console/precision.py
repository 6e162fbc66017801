"""The grid a released position was coarsened to, read from the recipient's own policy. Pure.

A coarsened position is the south-west corner of its grid cell (``{coarsen: {grid_deg: G}}``, see
deploy/policies/RUS.yaml): drawn as a point it would claim a precision the record does not have. The console
draws it as its cell. The grid comes from the policy of the principal who signed in - the agreement it was told
about, not another recipient's - per message type, origin (a partner's record released onward) and position path.

When the rules of a type coarsen one path to different grids, the largest grid the position lies on is taken
(a position on the 0.5 deg grid lies on the 0.1 deg grid too, so the coarser claim is the safe one); a position
on none of them is drawn as a point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from release.loader import read_policy
from release.spec import PolicySpec

__all__ = ["Grids", "grids_of", "load_grids", "cell_of"]

#: (origin partner code or None, message type, position path without [] marks) -> grid sizes in degrees
Grids = Mapping[tuple[str | None, str, str], frozenset[float]]
_ON_GRID = 1e-6


def _coarsened(rules: Mapping[str, Iterable[Any]], origin: str | None, out: dict) -> None:
    for type_name, type_rules in rules.items():
        for rule in type_rules:
            for path, action in rule.fields.items():
                grid = getattr(action, "grid_deg", None)
                if getattr(action, "kind", None) == "coarsen" and grid:
                    key = (origin, type_name, str(path).replace("[]", ""))
                    out[key] = out.get(key, frozenset()) | {float(grid)}


def grids_of(spec: PolicySpec) -> dict[tuple[str | None, str, str], frozenset[float]]:
    """Every coarsened position path of one recipient's policy, with its grids."""
    out: dict = {}
    _coarsened(spec.rules, None, out)
    for origin, rules in spec.from_partners.items():
        _coarsened(rules, origin, out)
    return out


def load_grids(policy_file) -> dict[tuple[str | None, str, str], frozenset[float]]:
    """The grids of one policy file (raises release.PolicyError naming the file, line and field)."""
    return grids_of(read_policy(policy_file).spec)


def _on(value: float, grid: float) -> bool:
    q = value / grid
    return abs(q - round(q)) < _ON_GRID * max(1.0, abs(q))


def cell_of(grids: Grids, origin: str | None, type_name: str, path: str, lat: float, lon: float
            ) -> tuple[float, float, float, float] | None:
    """(south, west, north, east) of the cell ``lat, lon`` stands for, or None when it is a point."""
    sizes = grids.get((origin, type_name, path.replace("[]", "")))
    if not sizes or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    for grid in sorted(sizes, reverse=True):
        if _on(lat, grid) and _on(lon, grid):
            return (lat, lon, round(lat + grid, 6), round(lon + grid, 6))
    return None
