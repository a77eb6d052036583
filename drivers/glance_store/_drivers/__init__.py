"""The store modules, at the import paths glance_store gives them (``glance_store._drivers``)."""
