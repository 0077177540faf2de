"""The running agent's parts, wired together by :mod:`falcopy.agent.app`: what to
capture for a ruleset (``selection``), the event thread (``event_loop``), the rules
reloader (``reloader``), the BPF load begun before the rest of start-up
(``probe_loader``) and the scrape-time numbers of the live objects (``live_metrics``)."""
