"""Sources: one module per source, each emitting Records."""
