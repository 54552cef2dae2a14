"""Source adapters, one module per mirror site.  Register a new mirror in ADAPTERS."""

from __future__ import annotations

from pipeline.sources import clinconnect, veeva
from pipeline.sources.base import SiteAdapter

ADAPTERS: dict[str, SiteAdapter] = {
    veeva.ADAPTER.name: veeva.ADAPTER,
    clinconnect.ADAPTER.name: clinconnect.ADAPTER,
}
