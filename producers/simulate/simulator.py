"""The Simulator: one world of all three components, interleaved by the message mix, evenly paced in time.

``liaison simulate naval|air|intel|all --rate R --duration S --seed K`` drives
:meth:`Simulator.events` and publishes event *i* at its offset; the tests and benchmarks use the
same generator. Everything is a pure function of ``(components, seed, start, rate)``::

    sim = Simulator({"air", "naval"}, seed=7, start=datetime(2015, 11, 23, 6, tzinfo=timezone.utc))
    for offset, model in sim.events(rate=200, duration=120):   # exactly round(200 * 120) events
        ...                                                    # offsets i / rate, evenly spaced

One world, whichever components are enabled: the components only choose which message types
are emitted (:func:`~producers.simulate.scenario.message_types`), so the air picture is the same
with or without ``naval``.

Time
----
Every timestamp is ``start + offset`` (millisecond precision): ``label.created_at`` is the
offset of the event, observation times are at or before it. Ships and support aircraft move at
their real speeds. Sorties are *time-compressed*: a sortie flies its (real) route in
``sortie_seconds`` of event time -- by default ``24 / sortie-start-rate`` (about 24 sorties
airborne at a time) bounded to 30 s .. 3 h -- so that short runs contain whole sorties and the
message mix holds at any rate. The reported airspeeds are realistic; the ground speed implied
by a compressed plan's ETAs is not.

Determinism
-----------
All randomness comes from ``random.Random(seed)`` (message ids are
``uuid.UUID(int=rng.getrandbits(128), version=4)``); the same arguments give the same events.
:meth:`Simulator.events` for a longer duration extends, never changes, a shorter run. With
``sentinels=True`` the events are the same except for the planted sentinels (drawn from a
separate generator, see :mod:`producers.simulate.sentinels`).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from itertools import count, islice
from typing import Iterable, Iterator

from pydantic import BaseModel

from producers.simulate.air import Air
from producers.simulate.air_data import AIRBORNE_TARGET, NEW_SORTIE_SHARE, SORTIE_SECONDS_MAX, SORTIE_SECONDS_MIN
from producers.simulate.intel import Intel
from producers.simulate.labels import Labels
from producers.simulate.naval import Naval
from producers.simulate.run import Run
from producers.simulate.scenario import DEFAULT_RATE, DEFAULT_START, MIX, message_types, parse_components
from producers.simulate.weighted import Weighted

__all__ = ["Simulator", "iter_events", "sample"]


class Simulator:
    """Deterministic generator of the liaison messages of our components.

    ``components``: a subset of :data:`~producers.simulate.scenario.COMPONENTS` (or ``"all"``,
    or ``"air,naval"``); ``seed``: the seed of the random generator; ``start``: time of offset 0
    (timezone-aware, truncated to milliseconds; default
    :data:`~producers.simulate.scenario.DEFAULT_START`); ``sentinels``: plant sentinels (see
    :mod:`producers.simulate.sentinels`); ``sortie_seconds``: how long a sortie flies in event
    time (default: derived from the rate, see the module doc).

    The simulator holds no state between calls: every :meth:`events` / :meth:`stream` call
    starts the same world afresh.
    """

    def __init__(
        self,
        components: str | Iterable[str] = "all",
        seed: int = 0,
        start: datetime | None = None,
        *,
        sentinels: bool = False,
        sortie_seconds: float | None = None,
    ):
        self.components: frozenset[str] = parse_components(components)
        self.seed = int(seed)
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.tzinfo.utcoffset(start) is None:
            raise ValueError("start must be timezone-aware (UTC)")
        start = start.astimezone(timezone.utc)
        self.start: datetime = start.replace(microsecond=start.microsecond - start.microsecond % 1000)
        self.sentinels = bool(sentinels)
        if sortie_seconds is not None and not sortie_seconds > 0:
            raise ValueError("sortie_seconds must be positive")
        self._sortie_seconds = sortie_seconds
        self.message_types: tuple[str, ...] = message_types(self.components)

    @property
    def mix(self) -> dict[str, float]:
        """Expected share (0..1) of each emitted message type."""
        total = sum(MIX[name] for name in self.message_types)
        return {name: MIX[name] / total for name in self.message_types}

    def sortie_seconds(self, rate: float) -> float:
        """Event-time duration of a sortie at ``rate`` events per second."""
        if self._sortie_seconds is not None:
            return self._sortie_seconds
        share = self.mix.get("AirMissionPlan", 0.0)
        if share <= 0:
            return SORTIE_SECONDS_MAX
        sortie_rate = rate * share * NEW_SORTIE_SHARE
        return min(SORTIE_SECONDS_MAX, max(SORTIE_SECONDS_MIN, AIRBORNE_TARGET / sortie_rate))

    def stream(self, rate: float) -> Iterator[tuple[float, BaseModel]]:
        """Endless ``(offset_seconds, model)`` pairs, event *i* at offset ``i / rate``."""
        if not (isinstance(rate, (int, float)) and rate > 0 and math.isfinite(rate)):
            raise ValueError("rate must be a positive number of events per second")
        return self._generate(float(rate))

    def events(self, rate: float, duration: float) -> Iterator[tuple[float, BaseModel]]:
        """Exactly ``round(rate * duration)`` events, evenly spaced over ``[0, duration)``.

        Event *i* is at offset ``i / rate``, so any window of ``w`` seconds holds
        ``rate * w`` events to within one.
        """
        stream = self.stream(rate)
        if not (isinstance(duration, (int, float)) and duration >= 0 and math.isfinite(duration)):
            raise ValueError("duration must be a non-negative number of seconds")
        return islice(stream, round(rate * duration))

    def _generate(self, rate: float) -> Iterator[tuple[float, BaseModel]]:
        world = _World(self, rate)
        for index in count():
            offset = index / rate
            yield offset, world.event(round(offset * 1000))


def iter_events(
    components: str | Iterable[str] = "all",
    seed: int = 0,
    start: datetime | None = None,
    rate: float = DEFAULT_RATE,
    *,
    sentinels: bool = False,
) -> Iterator[tuple[float, BaseModel]]:
    """Endless ``(offset_seconds, model)`` pairs at ``rate`` (for long runs)."""
    return Simulator(components, seed, start, sentinels=sentinels).stream(rate)


def sample(
    n: int,
    seed: int = 0,
    components: str | Iterable[str] = "all",
    *,
    start: datetime | None = None,
    rate: float = DEFAULT_RATE,
    sentinels: bool = False,
) -> list[BaseModel]:
    """The first ``n`` models of a run (convenience for tests and demos)."""
    return [model for _, model in islice(iter_events(components, seed, start, rate, sentinels=sentinels), n)]


class _World:
    """One run: the shared basics, the labels and the three components, picked event by event by the mix."""

    def __init__(self, sim: Simulator, rate: float):
        run = Run(sim.seed, sim.start, sim.sentinels)
        self.rng = run.rng
        self.types = Weighted([(name, MIX[name]) for name in sim.message_types])
        labels = Labels(run)
        # Built in this order: the ships, then the air component's orbits and callsigns, draw
        # their initial state from the run's generator.
        naval = Naval(run, labels)
        air = Air(run, labels, naval.carrier, sortie_ms=max(1000, round(sim.sortie_seconds(rate) * 1000)))
        intel = Intel(run, labels)
        self.builders = {
            "AirMissionPlan": air.mission_plan,
            "AirTrack": air.air_track,
            "MaritimeTrack": naval.maritime_track,
            "StrikeReport": air.strike_report_slot,
            "GroupLocationReport": intel.group_location,
            "ForeignFighterReport": intel.foreign_fighter,
            "LogisticsObservation": intel.logistics,
        }

    def event(self, t_ms: int) -> BaseModel:
        return self.builders[self.types.pick(self.rng)](t_ms)
