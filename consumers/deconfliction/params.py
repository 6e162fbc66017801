"""The separation minima, look-ahead and lifecycle thresholds of deconfliction (options of the service)."""

from __future__ import annotations

from dataclasses import dataclass

from consumers.deconfliction.geometry import NM_M

__all__ = ["Params"]


@dataclass(frozen=True)
class Params:
    #: lateral separation: closer than this is a conflict (5 NM)
    lateral_m: float = 5 * NM_M
    #: vertical separation: bands (or altitudes) less than this apart are a conflict (1,000 ft)
    vertical_ft: float = 1000.0
    #: track against track and track against plan look this far ahead (5 minutes)
    lookahead_s: float = 300.0
    #: a plan's time on a leg is its ETAs interpolated, widened by this much either side (ETA uncertainty)
    eta_buffer_s: float = 300.0
    #: a track whose last report is older than this is dropped from the picture
    track_max_age_s: float = 60.0
    #: a track's path against plans spans [now, now + look-ahead] widened to multiples of this step, so that its
    #: conflict volume moves once per step, not with every report of a track flying along a corridor
    track_step_s: float = 60.0
    #: dead reckoning: a track's report whose path (now and at the end of the look-ahead) stays within this of the
    #: path of the report its pairs were last evaluated with, in the same step, at an altitude within
    #: ``track_tolerance_ft``, is kept in the picture without re-evaluating its pairs (0: every report is evaluated)
    track_tolerance_m: float = 0.1 * NM_M
    track_tolerance_ft: float = 100.0
    #: hits of one pair less than this apart in time are one conflict (one alert)
    merge_gap_s: float = 120.0
    #: spatial index cell (degrees) and layer (feet)
    cell_deg: float = 0.25
    layer_ft: float = 2000.0
    # --- lifecycle: an alert is UPDATED only when one of these moves by more than this
    #: centre of the conflict volume
    centre_moved_m: float = 0.5 * NM_M
    #: radius of the volume
    radius_changed_m: float = 0.5 * NM_M
    #: window start or end, time of closest approach (times not in the future of both versions never count)
    time_moved_s: float = 30.0
    #: floor or ceiling of the volume
    band_changed_ft: float = 0.0
    # --- labels of alerts
    #: our nation (ISO alpha-3), named in every alert's REL TO
    our_nation: str = "FRA"
    #: label.originator of the alerts
    originator: str = "air.deconfliction"

    def __post_init__(self) -> None:
        if min(self.lateral_m, self.lookahead_s, self.track_max_age_s, self.track_step_s, self.cell_deg,
               self.layer_ft) <= 0:
            raise ValueError("separations, look-ahead, track age, step and cell must be positive")
        if min(self.vertical_ft, self.eta_buffer_s, self.merge_gap_s, self.track_tolerance_m,
               self.track_tolerance_ft) < 0:
            raise ValueError("vertical separation, ETA buffer, merge gap and track tolerances must be >= 0")
