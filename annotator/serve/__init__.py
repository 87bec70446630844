"""`annotate serve STORE`: label QA in the browser (docs/serve.md). catalog.py filters, sorts and pages
the rows (plain numpy over meta columns loaded once; filters.py turns a query into a mask and draws
histograms), render.py draws thumbnails and layers from Zarr chunks (plain numpy + Pillow, bounded
caches), source.py decodes failed rows' source frames from the dataset root, compare.py shows a second
store beside the first (--compare), audit.py joins a `fas-train audit` table as columns (--audit),
app.py is the Flask application and static/ the page."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
