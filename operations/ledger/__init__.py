"""The reciprocity ledger: what we gave each partner and what it gave us, per category of the agreement.

    model       keys, figures and windows (no I/O)
    evaluate    counting audit decisions, window sums, ratios, the pauses a policy's ``reciprocity:`` asks for
                (pure: the clock is passed in)
    changelog   the liaison.ledger record format and :func:`load_state` (reads a consumer or records)
    audits      framed Avro audit records -> dicts (the registry at the edge)
    service     ``liaison ledger run``: both audits in, changed hour buckets out, exactly once
    serve       Prometheus /metrics, /healthz and /ledger (JSON)
    render      the terminal table of ``liaison ledger``
    cli         the ``liaison ledger`` commands

What the forwarder needs (no Kafka client at import): ``from operations.ledger import load_state, pauses``.
"""

from operations.ledger.changelog import load_state
from operations.ledger.evaluate import pauses

__all__ = ["load_state", "pauses"]
