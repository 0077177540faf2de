"""What the compiled modules' sources (:mod:`falcopy.agent.fastpath`, :mod:`falcopy.agent.state.fdops`,
:mod:`falcopy.agent.prefilter`) ask of the ``cython`` module when Cython is not installed
(the agent's image): the modules then run as plain Python, where the ``cython.compiled``
branches are never taken and the type declarations are no-ops."""

from collections.abc import Callable
from typing import Any

compiled = False
Py_ssize_t = int


def locals(**types: Any) -> Callable[[Any], Any]:  # Cython's name: C types for the compiler
    return lambda func: func
