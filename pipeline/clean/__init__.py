"""Clean stage: bytes -> text -> outline lines, with site chrome and capture damage removed."""
