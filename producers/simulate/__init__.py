"""Deterministic simulators of our naval, air and intelligence components (no Kafka here).

:class:`Simulator` gives the ``(offset, model)`` events of a run; one job per module:

* :mod:`~producers.simulate.scenario` - components, message mix, areas, groups, defaults;
* :mod:`~producers.simulate.simulator` - :class:`Simulator` (time, pacing, determinism), :func:`sample`;
* :mod:`~producers.simulate.naval`, :mod:`~producers.simulate.air` (with its order of battle in
  :mod:`~producers.simulate.air_data`), :mod:`~producers.simulate.intel` - the three components;
* :mod:`~producers.simulate.labels` - security labels; :mod:`~producers.simulate.sentinels` -
  sentinel marks and :func:`find_sentinels`;
* :mod:`~producers.simulate.run` - the shared random generators, clock and counters of a run;
  :mod:`~producers.simulate.geo`, :mod:`~producers.simulate.weighted` - geometry, weighted choice;
* :mod:`~producers.simulate.partner` (order of battle in :mod:`~producers.simulate.partner_data`) - a partner
  publishing to us: :class:`~producers.simulate.partner.PartnerSimulator`, good records in the inbound format,
  bad input of every class (:data:`~producers.simulate.partner.BAD_CLASSES`), sorties crossing ours;
  :mod:`~producers.simulate.partner_run` publishes it as the partner's principal (``liaison simulate partner``;
  the only module here that talks to Kafka; not imported by this package).
"""

from __future__ import annotations

from producers.simulate.scenario import (
    COMPONENT_TYPES,
    COMPONENTS,
    DEFAULT_RATE,
    DEFAULT_START,
    DESIGNATED_GROUPS,
    EAST_MED,
    GULF,
    MIX,
    NON_DESIGNATED_GROUPS,
    TARGETS,
    message_types,
    parse_components,
)
from producers.simulate.sentinels import SENTINEL_FIELDS, SENTINEL_PREFIX, SENTINEL_RE, find_sentinels
from producers.simulate.simulator import Simulator, iter_events, sample

__all__ = [
    "COMPONENTS",
    "COMPONENT_TYPES",
    "MIX",
    "DEFAULT_RATE",
    "DEFAULT_START",
    "SENTINEL_PREFIX",
    "SENTINEL_RE",
    "SENTINEL_FIELDS",
    "DESIGNATED_GROUPS",
    "NON_DESIGNATED_GROUPS",
    "EAST_MED",
    "GULF",
    "TARGETS",
    "Simulator",
    "parse_components",
    "message_types",
    "iter_events",
    "sample",
    "find_sentinels",
]
