"""The store's schema revisions, oldest first (see the package docstring one level up)."""
