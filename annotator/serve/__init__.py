"""`annotate serve STORE`: label QA in the browser (docs/serve.md). catalog.py filters and pages the
rows (plain numpy over meta columns loaded once), render.py draws thumbnails and layers from Zarr
chunks (plain numpy + Pillow, bounded caches), app.py is the Flask application and static/ the page."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
