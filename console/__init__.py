"""`liaison console`: the bus in a browser, for liaison officers, our components and operations.

Who sees what is the broker's decision: a user signs in as a principal (``partner-rus``, ``component-naval``,
``operations``) with that principal's SCRAM password; the console opens a Kafka consumer *with those credentials*
for that session alone and shows what it reads. Nothing is read with a super user, and a session's records stay
in that session's buffer.

    principals   who may sign in, and what each principal's view reads (pure)
    precision    the grid a released position was coarsened to, from the recipient's own policy (pure)
    view         a released record -> what the page draws and lists (pure)
    ops_model    decisions, quarantines, lag history over time (pure, the clock passed in)
    sessions     sign-in against the broker, one reader per session (Kafka I/O)
    operations   the operations principal's reader: audits, ledger, lag, the services' health (I/O)
    app          the Starlette application: pages, JSON, server-sent events
    cli          `liaison console`
    web/         the pages, scripts and style; web/node_modules: Leaflet and the offline world map (npm)
"""
