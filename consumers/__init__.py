"""Where records are read and passed on: each consumer service is a pure pipeline inside a thin Kafka service.

* :mod:`consumers.forwarder` -- internal topics -> each partner's filtered feed (release decisions from
  :mod:`release`), audit and dead letters, exactly once.
* :mod:`consumers.officers` -- what a liaison officer runs: the live feed of one partner's topics.
"""
