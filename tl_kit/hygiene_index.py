"""Moved to :mod:`tl_kit.data.hygiene_index`; this name stays importable."""

from tl_kit.data.hygiene_index import INDEX_DIR, INDEX_VERSION, HygieneIndex, index_location

__all__ = ["INDEX_DIR", "INDEX_VERSION", "HygieneIndex", "index_location"]
