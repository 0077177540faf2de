"""The agent's live field sources (the syscall FieldSource over kernel events)."""
