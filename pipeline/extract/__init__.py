"""Extract stage: outline lines -> typed field values.  Site-independent helpers."""
