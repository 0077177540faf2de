"""The wire format of the workload-metadata stream (operator collector -> agents).

One JSON document per line over a chunked HTTPS response (``GET /v1/k8smeta``):

* ``{"type": "snapshot", "epoch": E, "seq": S, "objects": [record, ...]}``: every
  object the node needs now; the receiver replaces what it had.
* ``{"type": "put", "seq": S, "obj": record}``: an object was added or changed.
* ``{"type": "del", "seq": S, "kind": K, "uid": U}``: the node no longer needs it.
* ``{"type": "bookmark", "seq": S}``: nothing changed; sent every heartbeat so that
  a silent connection is told apart from a dead one.

A record is ``{"kind", "uid", "name", "ns", "labels"}`` plus, for pods, ``ip``,
``owner`` (controller uid: ReplicaSet or ReplicationController), ``containers``
(full container ids from the status) and ``svcs`` (uids of the Services selecting
it); for ReplicaSets ``owner`` (the Deployment uid).  A subscriber resumes with
``?node=N&epoch=E&since=S``; a resume point the collector no longer holds (too old,
another epoch after a restart) is answered with a fresh snapshot.
"""

from __future__ import annotations

from typing import Final

PATH: Final = "/v1/k8smeta"
#: record kinds, as the k8smeta field names spell them
POD: Final = "pod"
NS: Final = "ns"
RS: Final = "rs"
DEPLOYMENT: Final = "deployment"
SVC: Final = "svc"
RC: Final = "rc"
KINDS: Final = (POD, NS, RS, DEPLOYMENT, SVC, RC)
