"""Producers of the liaison bus: what our naval, air and intelligence components publish.

* :mod:`producers.simulate` -- deterministic, Kafka-free simulators of the three components
  (coherent sorties, ship movements, intelligence reports) used by ``liaison simulate``, the
  tests and the benchmarks.
* :mod:`producers.validate` -- line-by-line validation of NDJSON files of typed messages, used
  by ``liaison publish <Type> --file events.ndjson`` before anything is sent.
* :mod:`producers.publisher` -- publishing typed models to the internal topics (Kafka, registry
  framing); the only module here that talks to Kafka.

Importing this package imports nothing Kafka-related; import the sub-modules you need.
"""
