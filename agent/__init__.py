"""The node agent.  The compiled modules' chooser (:mod:`falcopy.agent.accel`) is
installed here, before any of them can be imported."""

from falcopy.agent.accel import install

install()
