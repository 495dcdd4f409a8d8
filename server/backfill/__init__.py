"""``prospect-sync backfill``: the offline tool that writes a lookup field's values onto
existing prospects from a CSV (docs/backfill.md). Its own composition root beside the
gRPC edge: ``cli`` parses, ``source`` reads rows, ``run`` drives the connection, and
``journal`` / ``report`` make it resumable and readable. It shares the configuration,
the Pardot client and the strategies' validation with the service, never its servicer.
"""
