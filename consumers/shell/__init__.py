"""The shell every consumer service runs in (forwarder, ingress guard, deconfliction): the records a pipeline
takes and gives (:mod:`.records`), the input decoder and its registry cache (:mod:`.codec`,
:mod:`.schema_cache`), fault sorting and backoff (:mod:`.faults`), one batch's transaction (:mod:`.txn`),
health and the metrics server (:mod:`.health`), and the command loop that builds, runs and supervises a
service (:mod:`.supervise`). A service's own logic is its pure pipeline; the shell imports none of them."""
