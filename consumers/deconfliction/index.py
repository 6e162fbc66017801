"""A uniform lat/lon grid of bounding boxes: which objects may be near which. Cost grows with the objects that
share cells, not with all pairs: an object is only ever compared with those its (margin-widened) box shares a
cell with.

A box is registered in every cell it overlaps; a query returns the keys registered in the cells its box
overlaps. Two objects whose boxes, each widened by the separation, share no cell are never compared; the
converse is not promised (sharing a cell only makes them candidates). Cells are ``cell_deg`` square in degrees;
no wrap at the antimeridian.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["BBox", "GridIndex", "bbox_of", "widen"]

BBox = tuple[float, float, float, float]  # lat_min, lon_min, lat_max, lon_max
M_PER_DEG_LAT = 110_574.0  # the shortest degree of latitude (at the equator): a safe margin conversion


def bbox_of(points: Iterable[tuple[float, float]]) -> BBox:
    pts = list(points)
    return (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))


def widen(box: BBox, margin_m: float) -> BBox:
    """``box`` widened by at least ``margin_m`` on every side."""
    dlat = margin_m / M_PER_DEG_LAT
    cos = max(0.01, min(math.cos(math.radians(box[0])), math.cos(math.radians(box[2]))))
    dlon = margin_m / (111_320.0 * cos) * 1.01
    return box[0] - dlat, box[1] - dlon, box[2] + dlat, box[3] + dlon


class GridIndex:
    def __init__(self, cell_deg: float):
        self.cell = cell_deg
        self._cells: dict[tuple[int, int], set[str]] = defaultdict(set)
        self._where: dict[str, list[tuple[int, int]]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def _span(self, box: BBox) -> list[tuple[int, int]]:
        c = self.cell
        i0, j0 = math.floor(box[0] / c), math.floor(box[1] / c)
        i1, j1 = math.floor(box[2] / c), math.floor(box[3] / c)
        return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]

    def insert(self, key: str, box: BBox) -> None:
        """Register ``key`` (replacing its earlier box) in every cell ``box`` overlaps."""
        self.remove(key)
        cells = self._span(box)
        for cell in cells:
            self._cells[cell].add(key)
        self._where[key] = cells

    def remove(self, key: str) -> None:
        for cell in self._where.pop(key, ()):
            keys = self._cells[cell]
            keys.discard(key)
            if not keys:
                del self._cells[cell]

    def query(self, box: BBox) -> set[str]:
        """Keys registered in any cell ``box`` overlaps."""
        out: set[str] = set()
        for cell in self._span(box):
            keys = self._cells.get(cell)
            if keys:
                out |= keys
        return out

    def near(self, key: str) -> set[str]:
        """Keys sharing a cell with ``key`` (itself excluded)."""
        out: set[str] = set()
        for cell in self._where.get(key, ()):
            out |= self._cells[cell]
        out.discard(key)
        return out
