"""A uniform lat/lon/altitude grid of bounding boxes: which objects may be near which. Cost grows with the objects
that share cells, not with all pairs: an object is only ever compared with those its (margin-widened) box shares a
cell with.

A box is registered in every cell it overlaps; a query returns the keys registered in the cells its box
overlaps. Two objects whose boxes, each widened by the separation, share no cell are never compared; the
converse is not promised (sharing a cell only makes them candidates). Cells are ``cell_deg`` square in degrees
and, when ``layer_ft`` is given, ``layer_ft`` thick in altitude (a box's band, widened by half the vertical
separation, registers it in every layer it overlaps: two bands closer than the separation share a layer); no wrap
at the antimeridian. Keys are any hashable values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable

__all__ = ["BBox", "GridIndex", "bbox_of", "widen"]

BBox = tuple[float, float, float, float]  # lat_min, lon_min, lat_max, lon_max
Band = tuple[float, float]                # floor, ceiling (ft)
Cell = tuple[int, int, int]
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
    def __init__(self, cell_deg: float, layer_ft: float = math.inf):
        self.cell = cell_deg
        self.layer = layer_ft
        self._cells: dict[Cell, set[Hashable]] = defaultdict(set)
        self._where: dict[Hashable, list[Cell]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._where

    def _span(self, box: BBox, band: Band) -> list[Cell]:
        c, h = self.cell, self.layer
        i0, j0 = math.floor(box[0] / c), math.floor(box[1] / c)
        i1, j1 = math.floor(box[2] / c), math.floor(box[3] / c)
        k0, k1 = math.floor(band[0] / h), math.floor(band[1] / h)
        return [(i, j, k) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1) for k in range(k0, k1 + 1)]

    def insert(self, key: Hashable, box: BBox, band: Band = (0.0, 0.0)) -> None:
        """Register ``key`` (replacing its earlier box) in every cell ``box`` and ``band`` overlap. A key moved
        within the cells it was in costs no set operation (a track's next report, mostly)."""
        cells = self._span(box, band)
        before = self._where.get(key)
        if before == cells:
            return
        if before is not None:
            new = set(cells)
            for cell in before:
                if cell not in new:
                    self._discard(cell, key)
            old = set(before)
            cells_to_add = [c for c in cells if c not in old]
        else:
            cells_to_add = cells
        for cell in cells_to_add:
            self._cells[cell].add(key)
        self._where[key] = cells

    def remove(self, key: Hashable) -> None:
        for cell in self._where.pop(key, ()):
            self._discard(cell, key)

    def _discard(self, cell: Cell, key: Hashable) -> None:
        keys = self._cells[cell]
        keys.discard(key)
        if not keys:
            del self._cells[cell]

    def query(self, box: BBox, band: Band = (0.0, 0.0)) -> set[Hashable]:
        """Keys registered in any cell ``box`` and ``band`` overlap."""
        out: set[Hashable] = set()
        for cell in self._span(box, band):
            keys = self._cells.get(cell)
            if keys:
                out |= keys
        return out

    def near(self, key: Hashable) -> set[Hashable]:
        """Keys sharing a cell with ``key`` (itself excluded)."""
        out: set[Hashable] = set()
        for cell in self._where.get(key, ()):
            out |= self._cells[cell]
        out.discard(key)
        return out
