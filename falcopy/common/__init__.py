"""The bottom layer: definitions every other package uses (errors, time text).
Imports nothing else from falcopy."""
