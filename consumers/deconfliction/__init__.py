"""The pure core of air deconfliction (issue 12): our plans and tracks against each partner's, conflicts found
early, alerts with a lifecycle. No Kafka, no clock: the service around it (later) owns both.

Modules, one job each, bottom up:

* :mod:`.geometry`   geodesy (pyproj Geod WGS 84) and planar geometry in a local aeqd frame (pyproj)
* :mod:`.index`      a lat/lon grid of boxes: which objects may be near which
* :mod:`.model`      what is kept of a plan or a track (no purpose, target, loadout or base), from records
* :mod:`.params`     separation minima, look-ahead, lifecycle thresholds
* :mod:`.conflicts`  plan/plan, track/track, track/plan conflicts of one pair
* :mod:`.picture`    the live picture and its index, updated by records
* :mod:`.lifecycle`  NEW / UPDATED / CLEARED of one pair's alerts
* :mod:`.engine`     the step: (state, records, now) -> (state, emissions, changelog)
* :mod:`.alerts`     an emission as a DeconflictionAlert record (schemas/DeconflictionAlert.avsc)
"""

from consumers.deconfliction.alerts import alert_record, alert_schema
from consumers.deconfliction.engine import State, StepResult, evaluate
from consumers.deconfliction.params import Params

__all__ = ["Params", "State", "StepResult", "alert_record", "alert_schema", "evaluate"]
