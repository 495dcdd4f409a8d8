"""Pardot's wire format, as data: what one request sends and what its answer means.

Everything here is data in, data out: paths, the one request value
(:class:`clients.wire.request.PardotRequest`), the reading of answers, the batch
format. It never sends, waits, retries or decides policy, so it imports neither asyncio
nor httpx (an import contract in pyproject.toml says so); ``clients.transport`` is what
puts a request on the wire.

Each API dialect is one module that builds requests and names the parser of their
answers: ``v3v4`` (form bodies, ``format=json``, Pardot's envelope) and ``v5`` (JSON
bodies, ``{code, message}`` errors). A new dialect is a new module here; the transport
sends whatever :class:`PardotRequest` it is given.
"""
