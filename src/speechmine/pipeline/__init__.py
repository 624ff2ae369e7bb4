"""The mining pipeline, one module per stage in data-flow order.

* :mod:`.stage`: the contract every stage follows (key, load-or-compute, completion mark);
* :mod:`.inputs`: find files, segment raw audio, scan shards, assemble a side;
* :mod:`.embed`: one embedding file per shard;
* :mod:`.index`: a trained, populated index per large side;
* :mod:`.knn`: neighbours in both directions;
* :mod:`.select`: margin scores and the mined pairs;
* :mod:`.outputs`: stopes' files, published as one set with ``run.json`` last;
* :mod:`.run`: :func:`plan` (every key, before anything runs) and :func:`run`.
"""

from __future__ import annotations

from .run import Plan, RunResult, plan, run

__all__ = ["run", "plan", "Plan", "RunResult"]
