"""What the agent and the operator both speak: the rules bundle format and its reader,
the node-status Lease contract, the Kubernetes client configuration.  Sits above the
engine and below both; neither the agent nor the operator imports the other."""
