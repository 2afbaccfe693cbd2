"""Pure domain rules: no I/O imports here."""
