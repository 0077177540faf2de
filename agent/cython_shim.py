"""What :mod:`falcopy.agent.fastpath` asks of the ``cython`` module when Cython is not
installed (the agent's image): the module then runs as plain Python, where the
``cython.compiled`` branches are never taken."""

compiled = False
