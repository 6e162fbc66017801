"""The ingress guard (`liaison ingress`): what a partner publishes to us, checked, then relabelled partner-origin
or quarantined, exactly once, with an audit record per decision. A pure pipeline (:mod:`.pipeline`, :mod:`.checks`)
inside a thin Kafka service (:mod:`.service`), in the shape of the forwarder."""
