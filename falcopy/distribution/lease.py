"""Which rules each node runs: the Lease contract between agents and the operator.

Why a Lease per agent (``falcopy-agent-<node>`` in the release namespace):
- least privilege: agents get ``get/create/update`` on ``leases`` in one
  namespace; no write access to pods, ConfigMaps or the FalcoRules, and the
  operator needs no network path into the agents;
- liveness comes with it: ``renewTime`` tells a node that is gone (its Lease
  stops being renewed) from one that lags, so the denominator of
  ``status.nodes`` is the set of live agents, with no node list needed;
- tiny objects, one write per reload plus a renewal per period.

Annotations written by the agent (:mod:`falcopy.agent.control.lease`) and read
by the operator (:mod:`falcopy.operator.nodes`):
``falcopy.io/rules-version`` (the bundle version it has loaded; see
:mod:`falcopy.distribution.bundle`), ``falcopy.io/rules-error`` (the last failed
reload, empty when the last one worked) and ``falcopy.io/rules-loaded-at``.
"""

VERSION_ANNOTATION = "falcopy.io/rules-version"
ERROR_ANNOTATION = "falcopy.io/rules-error"
LOADED_AT_ANNOTATION = "falcopy.io/rules-loaded-at"
STATUS_LABEL = "falcopy.io/agent-status"
LEASE_PREFIX = "falcopy-agent-"
