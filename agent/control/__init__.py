"""Agent control plane: configuration (falcopy.yaml), web server, metrics."""
