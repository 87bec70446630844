"""The QA page's Flask application. Read-only unless allow_flags; every route reads the store
through zarr or the package's own static folder, except the source frames of failed rows, read from
the dataset root the store's config records and nowhere else (source.py); a bad id or query is a 4xx
JSON {"error": ...} and an unforeseen failure a 500 with a one-line message, never a traceback page.

Only the rows of committed shards are served (catalog.py): a store may be served while `annotate run`
still writes it. Requests must name this machine's loopback, the --host, or an --allowed-host in
their Host header: a page of another site whose name an attacker points at 127.0.0.1 (DNS rebinding)
then cannot read crops or write flags through the visitor's browser."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler

from annotator.store import places, qa
from annotator import store
from annotator.core.errors import AnnotatorError
from annotator.core.samples import STATUS_CODES
from annotator.store.verify import require_sound
from .audit import AuditTable
from .catalog import Catalog, QueryError
from .compare import Comparison, add_compare
from .render import LAYERS, OVERLAYS, THUMB, Renderer, legend
from .source import SourceFrames

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::")  # every address of the machine: no single name to accept
PORTS = (1, 65535)


def host_name(host: str) -> str:
    """The name of a Host header value or --host: no port, no IPv6 brackets, no trailing dot, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def accepted_hosts(host: str = "127.0.0.1", allowed=()) -> frozenset[str]:
    """The Host names a server listening on `host` answers: loopback, host itself (unless a
    wildcard), and the allowed names."""
    names = {*LOOPBACK, *(host_name(a) for a in allowed)}
    if host_name(host) not in WILDCARD:
        names.add(host_name(host))
    return frozenset(names)


def check_listen(host: str, port: int, allowed=()) -> None:
    """One-line errors for a port or host the server cannot use, before any work."""
    if isinstance(port, bool) or not isinstance(port, int) or not PORTS[0] <= port <= PORTS[1]:
        raise AnnotatorError(f"--port {port} is not a TCP port; use {PORTS[0]} .. {PORTS[1]}")
    for name in allowed:
        if not name or any(c in name for c in "/ \t@?#") or not host_name(name):
            raise AnnotatorError(f"--allowed-host {name!r} is not a host name; give a name like qa.lab.example")
    if host_name(host) in WILDCARD and not allowed:
        raise AnnotatorError(f"--host {host} listens on every address, so the page cannot tell its own name "
                             "from another site's; add --allowed-host NAME for each name browsers will use")


def require_store(url: str) -> None:
    """A one-line error when url holds no label store, saying how to get one (not how to repair one)."""
    if store.is_store(url):
        return
    path = places.local(url)
    if path is not None and not path.exists():
        raise AnnotatorError(f"{url} does not exist; give the path of a label store (`annotate run --out` makes one)")
    inside = sorted(str(p.parent) for p in path.glob("*/zarr.json"))[:3] if path is not None and path.is_dir() else []
    if inside:
        raise AnnotatorError(f"{url} is not a label store (no zarr.json), but it holds {', '.join(inside)}: "
                             "serve the store itself")
    raise AnnotatorError(f"{url} is not a label store (no zarr.json); create one with `annotate run --out`, "
                         "or give the path of an existing store")


def create_app(url: str, allow_flags: bool = False, host: str = "127.0.0.1", allowed_hosts=(),
               refresh_s: float = 2.0, compare: str | None = None, audit: str | None = None) -> Flask:
    """The application for the store at url (checked at the metadata level first). host and
    allowed_hosts: the Host names requests may carry besides loopback (see accepted_hosts).
    refresh_s: how often at most the commit markers are looked at again. compare: a second store
    shown beside each sample (compare.py); audit: a `fas-train audit` table joined as columns (audit.py)."""
    url = places.normalize(url)
    require_store(url)
    require_sound(url, "metadata", "repair it (`annotate verify --repair`) before serving it", allow_pending=True)
    if allow_flags:
        try:
            places.require_writable(url, "the store")
        except AnnotatorError:
            raise AnnotatorError(f"--allow-flags needs a writable store, and {url} is read-only here; "
                                 "serve it without --allow-flags to browse") from None
    served = _Served(url, allow_flags, refresh_s)
    comparison = Comparison(url, compare, served.renderer) if compare else None
    if audit:
        served.catalog.join(AuditTable.read(audit, served.catalog.store_id))
    names = accepted_hosts(host, allowed_hosts)
    app = Flask(__name__, static_folder=None)
    app.config.update(JSON_SORT_KEYS=False)
    _add_guard(app, served.catalog, names)
    _add_error_handlers(app)
    _add_pages(app)
    _add_api(app, served)
    _add_pictures(app, served)
    _add_flags(app, served)
    add_compare(app, served, comparison, _png)
    app.config["COMPARE"] = comparison.url if comparison else None
    return app


class _Served:
    """What the routes share: the store's URL and open root, its catalog and renderer."""

    def __init__(self, url: str, allow_flags: bool, refresh_s: float):
        self.url, self.allow_flags = url, allow_flags
        self.root = store.open_store(url)
        self.renderer = Renderer(self.root)
        self.sources = SourceFrames(self.root)
        self.catalog = Catalog(self.root, url, refresh_s=refresh_s, on_reopen=self.forget)
        self.meta_names = sorted(self.root["meta"].array_keys())
        self.status_names = {v: k for k, v in STATUS_CODES.items()}

    def forget(self) -> None:
        """A shard was reopened (or the store re-created): its cached pictures are stale."""
        self.renderer.forget()
        self.sources.forget()

    def listed(self, row: int, flag_names: dict) -> dict:
        """A row as the grid lists it; a failed row with its status name and error text."""
        out = {"row": row, **self.catalog.describe(row), "flag": flag_names[int(self.catalog.flags[row])]}
        status = out.get("status", 0)
        if status:
            out["status_name"] = self.status_names.get(status, str(status))
            out["error"] = _plain(self.renderer.row("meta/error", row)) if "error" in self.meta_names else ""
        return out

    def check_row(self, row: int) -> None:
        """QueryError unless row is a committed row of the store."""
        catalog = self.catalog
        if not 0 <= row < catalog.n:
            raise QueryError(f"row {row} is outside the store (0 .. {catalog.n - 1})", 404)
        if not catalog.is_committed(row):
            raise QueryError(f"row {row} is not committed yet (`annotate run` is still writing shard "
                             f"{row // catalog.shard}); try again once it is committed", 409)


def _fail(code: int, message: str):
    return jsonify(error=message), code


def _add_guard(app: Flask, catalog: Catalog, names: frozenset[str]) -> None:
    @app.before_request
    def guard():
        if host_name(request.host) not in names:  # DNS rebinding: another site's name on our address
            return _fail(403, f"this server does not answer to the host {request.host!r}; open it as "
                              "http://127.0.0.1:PORT/ or restart it with --allowed-host NAME")
        if request.endpoint not in (None, "index", "static_file"):
            catalog.refresh()  # shards committed since the last look (at most every refresh_s)
        return None


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(QueryError)
    def bad_query(e):
        return _fail(e.status, str(e))

    @app.errorhandler(qa.FlagRefused)
    def refused_flag(e):
        return _fail(e.status, str(e))

    @app.errorhandler(HTTPException)
    def http_error(e):
        return _fail(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def unforeseen(e):
        print(f"annotate serve: {request.path}: {type(e).__name__}: {e}", file=sys.stderr)
        return _fail(500, f"internal error ({type(e).__name__}); see the server's terminal")


def _add_pages(app: Flask) -> None:
    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name: str):
        return send_from_directory(STATIC, name)  # safe_join: a path leaving the folder is a 404


def _add_api(app: Flask, served: _Served) -> None:
    url, root, catalog, renderer = served.url, served.root, served.catalog, served.renderer

    @app.get("/api/info")
    def info():
        return jsonify(store=url, n=catalog.n, committed=catalog.n_committed, crop=int(root["image"].shape[1]),
                       choices=catalog.choices(), allow_flags=served.allow_flags,
                       overlays=list(OVERLAYS), layers=list(LAYERS), pyramid=renderer.pyramid,
                       region_names=list(root.attrs.get("region_names", [])),
                       legend=legend(root.attrs.get("region_names", [])), compare=app.config["COMPARE"])

    @app.get("/api/rows")
    def rows():
        page, per_page = _whole(request.args, page=1, per_page=48)
        chosen = catalog.query(request.args)
        shown, pages = catalog.page(chosen, page, per_page)
        flag_names = {v: k for k, v in qa.FLAGS.items()}
        return jsonify(total=int(len(chosen)), committed=catalog.n_committed, page=page, pages=pages,
                       rows=[served.listed(r, flag_names) for r in shown.tolist()])

    @app.get("/api/histogram")
    def histogram():
        (bins,) = _whole(request.args, bins=40)
        column = request.args.get("column", "")
        return jsonify(committed=catalog.n_committed, **catalog.histogram(request.args, column, bins))

    @app.get("/api/rows/<int:row>")
    def one(row: int):
        served.check_row(row)
        meta = {c: _plain(root[f"meta/{c}"][row]) for c in served.meta_names}
        groups = {p: int(codes[row]) for p, codes in catalog.protocols.items()}
        values = qa.read_row(url, row)
        if int(catalog.flags[row]) != qa.FLAGS[values["flag"]]:  # flagged by another server since
            catalog.set_flag(row, qa.FLAGS[values["flag"]])
        status = int(catalog.numeric["status"][row])
        return jsonify(row=row, meta=meta, protocols=groups, qa=values, landmarks=renderer.landmarks(row),
                       status_name=served.status_names.get(status, str(status)))


def _add_pictures(app: Flask, served: _Served) -> None:
    renderer = served.renderer

    @app.get("/thumb/<int:row>.png")
    def thumb(row: int):
        served.check_row(row)
        kind = request.args.get("overlay", "none")
        if kind not in OVERLAYS:
            raise QueryError(f"overlay {kind!r} is unknown; use one of {', '.join(OVERLAYS)}")
        return _png(renderer.thumbnail(row, kind))

    @app.get("/layer/<int:row>/<name>.png")
    def layer(row: int, name: str):
        served.check_row(row)
        known = list(LAYERS) + [f"pyramid-{k}" for k in renderer.pyramid]
        if name not in known:
            raise QueryError(f"layer {name!r} is unknown; use one of {', '.join(known)}")
        return _png(renderer.layer(row, name))

    @app.get("/source/<int:row>.jpg")
    def source(row: int):
        served.check_row(row)
        (side,) = _whole(request.args, side=THUMB)
        return _picture(served.sources.tile(row, side, int(served.catalog.numeric["status"][row])), "image/jpeg")


def _add_flags(app: Flask, served: _Served) -> None:
    url, catalog = served.url, served.catalog

    @app.post("/api/rows/<int:row>/flag")
    def flag(row: int):
        if not served.allow_flags:
            return _fail(403, "this server is read-only; restart it with --allow-flags to flag samples")
        served.check_row(row)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("flag") not in qa.FLAGS:
            raise QueryError('send JSON {"flag": "bad" | "good" | "none", "note": "text", '
                             '"sample_id": "the row\'s id"}')
        if not isinstance(body.get("sample_id"), str):
            raise QueryError("send the row's sample_id as the page showed it (\"sample_id\"): a flag is kept "
                             "for a sample, and is refused when the row holds another one")
        note = qa.check_note(body.get("note", ""))  # before anything is written
        saved = qa.set_flag(url, row, body["flag"], note, body["sample_id"])
        catalog.set_flag(row, qa.FLAGS[body["flag"]])
        return jsonify(row=row, sample_id=body["sample_id"], qa=saved)


def _whole(args, **defaults) -> tuple[int, ...]:
    """The named query arguments as integers (their defaults when absent); a 400 for any other text."""
    try:
        return tuple(int(args.get(name, default)) for name, default in defaults.items())
    except ValueError:
        raise QueryError(f"{' and '.join(defaults)} take{'s' if len(defaults) == 1 else ''} whole numbers") from None


def _plain(v):
    """A numpy scalar (or a 0-d array, possibly holding another: zarr's text reads) as the JSON value
    it stands for."""
    while hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN: browsers refuse the whole document
    return v


def _png(data: bytes):
    return _picture(data, "image/png")


def _picture(data: bytes, mimetype: str):
    from flask import Response

    return Response(data, mimetype=mimetype, headers={"Cache-Control": "max-age=60"})


class JSONErrorHandler(WSGIRequestHandler):
    """Werkzeug's request handler, with the errors http.server answers before the application sees
    the request (a request line over 64 KiB: 414; a malformed one: 400) as JSON like every other
    error of the page, not an HTML page."""

    def send_error(self, code, message=None, explain=None):
        short = self.responses.get(code, ("error",))[0]
        body = json.dumps({"error": f"{message or short} ({code}); shorten or fix the request"}).encode()
        self.log_error("code %d, message %s", code, message or short)
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_http_server(app: Flask, host: str, port: int):
    """The threaded HTTP server serve() runs (tests start it on port 0)."""
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True, request_handler=JSONErrorHandler)


def serve(url: str, host: str = "127.0.0.1", port: int = 8765, allow_flags: bool = False,
          allowed_hosts=(), compare: str | None = None, audit: str | None = None) -> None:
    """Run the page until interrupted."""
    check_listen(host, port, allowed_hosts)
    app = create_app(url, allow_flags, host=host, allowed_hosts=allowed_hosts, compare=compare, audit=audit)
    if host_name(host) not in LOOPBACK:
        print(f"warning: serving {url} on {host}, reachable from other machines; the page has no login",
              file=sys.stderr)
    if allow_flags and places.local(url) is None:
        print(f"warning: {url} is not on a local disk: flags get no OS lock there, so run one "
              "--allow-flags server per store", file=sys.stderr)
    try:
        server = make_http_server(app, host, port)
    except OSError as e:
        raise AnnotatorError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port") from None
    mode = "flags on (writes qa/ of the store)" if allow_flags else "read-only"
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {url} at http://{shown}:{port}/ ({mode}); Ctrl-C stops", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
