"""The leaf every layer stands on: the shared plain values (``model``), the error
catalogue and error classes (``errors``) and the facts about Pardot (``pardot_facts``).

It imports nothing of ours (``make lint`` checks it), so server, clients and strategies
can all use it without an arrow pointing the wrong way.
"""
