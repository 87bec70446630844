"""The QA page's Flask application. Read-only unless allow_flags; every route reads the store
through zarr or the package's own static folder (nothing else on disk); a bad id or query is a 4xx
JSON {"error": ...} and an unforeseen failure a 500 with a one-line message, never a traceback page."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from .. import places, qa, store
from ..errors import AnnotatorError
from ..verify import require_sound
from .catalog import Catalog, QueryError
from .render import LAYERS, OVERLAYS, Renderer

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(url: str, allow_flags: bool = False) -> Flask:
    """The application for the store at url (checked at the metadata level first)."""
    url = places.normalize(url)
    require_sound(url, "metadata", "repair it (`annotate verify --repair`) before serving it", allow_pending=True)
    if allow_flags:
        try:
            places.require_writable(url, "the store")
        except AnnotatorError:
            raise AnnotatorError(f"--allow-flags needs a writable store, and {url} is read-only here; "
                                 "serve it without --allow-flags to browse") from None
    root = store.open_store(url)
    catalog, renderer = Catalog(root, url), Renderer(root)
    meta_names = sorted(root["meta"].array_keys())
    app = Flask(__name__, static_folder=None)
    app.config.update(JSON_SORT_KEYS=False)

    def fail(code: int, message: str):
        return jsonify(error=message), code

    def check_row(row: int) -> None:
        if not 0 <= row < catalog.n:
            raise QueryError(f"row {row} is outside the store (0 .. {catalog.n - 1})")

    @app.errorhandler(QueryError)
    def bad_query(e):
        return fail(404 if "outside the store" in str(e) or "out of range" in str(e) else 400, str(e))

    @app.errorhandler(HTTPException)
    def http_error(e):
        return fail(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def unforeseen(e):
        print(f"annotate serve: {request.path}: {type(e).__name__}: {e}", file=sys.stderr)
        return fail(500, f"internal error ({type(e).__name__}); see the server's terminal")

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name: str):
        return send_from_directory(STATIC, name)  # safe_join: a path leaving the folder is a 404

    @app.get("/api/info")
    def info():
        return jsonify(store=url, n=catalog.n, crop=int(root["image"].shape[1]), choices=catalog.choices(),
                       allow_flags=allow_flags,
                       overlays=list(OVERLAYS), layers=list(LAYERS), pyramid=renderer.pyramid,
                       region_names=list(root.attrs.get("region_names", [])))

    @app.get("/api/rows")
    def rows():
        args = request.args
        try:
            page, per_page = int(args.get("page", 1)), int(args.get("per_page", 48))
        except ValueError:
            raise QueryError("page and per_page take whole numbers") from None
        chosen = catalog.query(args)
        shown, pages = catalog.page(chosen, page, per_page)
        names = {v: k for k, v in qa.FLAGS.items()}
        return jsonify(total=int(len(chosen)), page=page, pages=pages, rows=[
            {"row": r, **catalog.describe(r),
             "flag": names[int(catalog.flags[r])]} for r in shown.tolist()])

    @app.get("/api/rows/<int:row>")
    def one(row: int):
        check_row(row)
        meta = {c: _plain(root[f"meta/{c}"][row]) for c in meta_names}
        groups = {p: int(codes[row]) for p, codes in catalog.protocols.items()}
        return jsonify(row=row, meta=meta, protocols=groups, qa=qa.row_flag(store.open_store(url), row),
                       landmarks=renderer.landmarks(row))

    @app.get("/thumb/<int:row>.png")
    def thumb(row: int):
        check_row(row)
        kind = request.args.get("overlay", "none")
        if kind not in OVERLAYS:
            raise QueryError(f"overlay {kind!r} is unknown; use one of {', '.join(OVERLAYS)}")
        return _png(renderer.thumbnail(row, kind))

    @app.get("/layer/<int:row>/<name>.png")
    def layer(row: int, name: str):
        check_row(row)
        known = list(LAYERS) + [f"pyramid-{k}" for k in renderer.pyramid]
        if name not in known:
            raise QueryError(f"layer {name!r} is unknown; use one of {', '.join(known)}")
        return _png(renderer.layer(row, name))

    @app.post("/api/rows/<int:row>/flag")
    def flag(row: int):
        if not allow_flags:
            return fail(403, "this server is read-only; restart it with --allow-flags to flag samples")
        check_row(row)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("flag") not in qa.FLAGS or not isinstance(body.get("note", ""), str):
            raise QueryError('send JSON {"flag": "bad" | "good" | "none", "note": "text"}')
        saved = qa.set_flag(url, row, body["flag"], body.get("note", "")[:2000])
        catalog.set_flag(row, qa.FLAGS[body["flag"]])
        return jsonify(row=row, qa=saved)

    return app


def _plain(v):
    """A numpy scalar (or a 0-d array, possibly holding another: zarr's text reads) as the JSON value
    it stands for."""
    while hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN: browsers refuse the whole document
    return v


def _png(data: bytes):
    from flask import Response

    return Response(data, mimetype="image/png", headers={"Cache-Control": "max-age=60"})


def serve(url: str, host: str = "127.0.0.1", port: int = 8765, allow_flags: bool = False) -> None:
    """Run the page until interrupted."""
    from werkzeug.serving import make_server

    app = create_app(url, allow_flags)
    if host not in LOOPBACK:
        print(f"warning: serving {url} on {host}, reachable from other machines; the page has no login",
              file=sys.stderr)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as e:
        raise AnnotatorError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from None
    mode = "flags on (writes qa/ of the store)" if allow_flags else "read-only"
    print(f"serving {url} at http://{host}:{port}/ ({mode}); Ctrl-C stops", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
