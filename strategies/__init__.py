"""Strategies decide how an event becomes Pardot calls: a page of decision logic each,
written against the ``strategies.base.Gateway`` seam. ``strategies.core`` is the leaf
of shared plain values, errors and Pardot facts; ``strategies.catalog`` registers every
strategy (import ``REGISTRY`` from there).

Importing this package imports nothing, so the leaf can be used without the strategies.
"""
