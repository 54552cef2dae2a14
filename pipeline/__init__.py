"""Trial-page warehouse: scrape, clean, extract, deduplicate and load clinical-trial pages."""

__version__ = "0.1.0"
