"""Detection: rule formats compiled into one predicate form, run by one engine."""
