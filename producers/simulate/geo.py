"""Geometry on the globe: bearings, distances, headings, dead reckoning."""

from __future__ import annotations

import math

__all__ = ["KM_PER_DEG", "NM_PER_DEG", "bearing", "distance_km", "heading", "advance"]

KM_PER_DEG = 111.32
NM_PER_DEG = 60.0


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def heading(value: float) -> float:
    """Round a bearing to 0.1 degree, staying in [0, 360)."""
    return round(value % 360.0, 1) % 360.0


def advance(lat: float, lon: float, course: float, distance_nm: float) -> tuple[float, float]:
    """The point ``distance_nm`` from ``(lat, lon)`` on ``course`` (flat-earth step: short distances)."""
    rad = math.radians(course)
    dlat = distance_nm * math.cos(rad) / NM_PER_DEG
    dlon = distance_nm * math.sin(rad) / (NM_PER_DEG * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon
