"""The gRPC face of ProspectSync: configuration (``config``), logging (``logging``), the
servicer and its interceptor, errors as rich statuses (``status``), proto ↔ model
(``convert``), the assembled server (``app``) and the ``prospect-sync`` command (``cli``).

Nothing in this package talks to Pardot or decides how an event becomes Pardot calls:
``clients`` and ``strategies`` do.
"""
