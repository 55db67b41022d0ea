"""`wheelfarm serve SITE`: serve a site written by `wheelfarm index` over HTTP (stdlib, threaded).

Index pages are negotiated on the Accept header (PEP 691): the JSON form, the HTML form under its
PEP 691 media type, or text/html; 406 when the client accepts none of them. SITE is resolved on
every request, so a regeneration (which swaps the SITE symlink) is picked up at once, and a
request already streaming a file from the old tree finishes from it. Paths outside SITE — by
`..`, an encoded `..` or a symlink that leads out — are refused with 403; hidden files with 404."""

from __future__ import annotations

import email.utils
import json
import os
import posixpath
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from wheelfarm import index
from wheelfarm.errors import BadInput, EnvironmentProblem
from wheelfarm.reporter import Reporter

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
_LATEST = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
}
# Offered forms of an index page, in the order we prefer them when the client does not care
# (text/html first: what a browser or a plain `*/*` client expects).
_PAGE_FORMS = ((TEXT_HTML, "index.html"), (HTML_TYPE, "index.html"), (JSON_TYPE, "index.json"))
_FILE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".metadata": "text/plain; charset=utf-8",
}
# Index pages change whenever the wheelhouse does, and a wheel may be rebuilt under the same
# name, so clients may keep copies but must revalidate them (cheap: ETag / Last-Modified → 304).
CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    position: int

    def specificity(self, media_type: str) -> int | None:
        """2 for an exact match, 1 for type/*, 0 for */*, None for no match."""
        main, _, sub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type == main and self.subtype == "*":
            return 1
        if self.type == main and self.subtype == sub:
            return 2
        return None


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; no header means `*/*`. Malformed q-values count
    as q=0 (not acceptable) rather than failing the request."""
    if header is None or not header.strip():
        return [MediaRange("*", "*", 1.0, 0)]
    ranges = []
    for position, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        media = _LATEST.get(media, media)
        if "/" not in media:
            continue
        main, _, sub = media.partition("/")
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(main, sub, q, position))
    return ranges


def negotiate(header: str | None, offered: Sequence[str]) -> str | None:
    """The offered media type the client wants most, or None (→ 406). For each offered type the
    most specific matching range sets its q; ties go to the more specific match, then to the
    range the client listed first, then to the order of `offered`."""
    ranges = parse_accept(header)
    best: tuple[float, int, int, int] | None = None
    chosen = None
    for rank, media_type in enumerate(offered):
        matches = [(r.specificity(media_type), r) for r in ranges]
        scored = [(s, r) for s, r in matches if s is not None]
        if not scored:
            continue
        specificity, match = max(scored, key=lambda item: (item[0], -item[1].position))
        if match.q <= 0:
            continue
        key = (match.q, specificity, -match.position, -rank)
        if best is None or key > best:
            best, chosen = key, media_type
    return chosen


def _etag(stat: os.stat_result) -> str:
    # Trees are immutable once swapped in and distributions are hardlinks of the wheelhouse
    # files, so inode, size and mtime identify a version of a file.
    return f'"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"'


class _Handler(BaseHTTPRequestHandler):
    server_version = "wheelfarm"
    protocol_version = "HTTP/1.1"  # keep-alive: pip fetches many pages and files per install
    site: Path  # set on the subclass made by make_server
    reporter: Reporter | None = None  # where each request's log line goes; None: nowhere

    def do_GET(self) -> None:
        self._respond(body=True)

    def do_HEAD(self) -> None:
        self._respond(body=False)

    def log_message(self, format: str, *args: object) -> None:
        if self.reporter is not None:
            self.reporter.note(f"{self.address_string()} {format % args}")

    def _error(self, status: HTTPStatus, message: str, body: bool) -> None:
        data = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _respond(self, body: bool) -> None:
        raw_path = urlsplit(self.path).path
        parts = unquote(raw_path).split("/")
        if any(p in ("..", ".") or "\\" in p or "\0" in p for p in parts):
            self._error(HTTPStatus.FORBIDDEN, "path leaves the site", body)
            return
        if any(p.startswith(".") for p in parts if p):
            self._error(HTTPStatus.NOT_FOUND, "no such file", body)
            return
        try:
            root = self.site.resolve(strict=True)
        except OSError:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "the site is not there", body)
            return
        target = Path(os.path.realpath(root.joinpath(*[p for p in parts if p])))
        if target != root and root not in target.parents:
            self._error(HTTPStatus.FORBIDDEN, "path leaves the site", body)
            return
        if target.is_dir():
            if not raw_path.endswith("/"):
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", posixpath.join(raw_path, "") or "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._page(target, body)
        elif target.is_file():
            content_type = _FILE_TYPES.get(target.suffix, "application/octet-stream")
            self._file(target, content_type, body)
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such file", body)

    def _page(self, directory: Path, body: bool) -> None:
        forms = [(t, name) for t, name in _PAGE_FORMS if (directory / name).is_file()]
        if not forms:
            self._error(HTTPStatus.NOT_FOUND, "no index here", body)
            return
        chosen = negotiate(self.headers.get("Accept"), [t for t, _ in forms])
        if chosen is None:
            offered = ", ".join(t for t, _ in forms)
            self._error(HTTPStatus.NOT_ACCEPTABLE, f"this page is available as {offered}", body)
            return
        name = dict(forms)[chosen]
        content_type = f"{chosen}; charset=utf-8" if chosen == TEXT_HTML else chosen
        self._file(directory / name, content_type, body, vary=True)

    def _file(self, path: Path, content_type: str, body: bool, vary: bool = False) -> None:
        try:
            f = path.open("rb")
        except OSError:
            self._error(HTTPStatus.NOT_FOUND, "no such file", body)
            return
        with f:
            stat = os.fstat(f.fileno())
            etag = _etag(stat)
            modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
            status = HTTPStatus.OK
            if self._not_modified(etag, stat.st_mtime):
                status = HTTPStatus.NOT_MODIFIED
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            self.send_header("Cache-Control", CACHE_CONTROL)
            if vary:
                self.send_header("Vary", "Accept")
            if status == HTTPStatus.NOT_MODIFIED:
                self.end_headers()
                return
            self.send_header("Content-Length", str(stat.st_size))
            self.end_headers()
            if body:
                shutil.copyfileobj(f, self.wfile)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match == "*"
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            parsed = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return int(mtime) <= parsed.timestamp()


def make_server(
    site: Path, host: str = "127.0.0.1", port: int = 0, *, reporter: Reporter | None = None
) -> ThreadingHTTPServer:
    """A ready, not yet running server for SITE (port 0: any free port), logging each request
    to `reporter`."""
    if not site.exists():
        raise BadInput(
            f"{site} does not exist",
            hint="write a site first: wheelfarm index WHEELHOUSE -o SITE",
        )
    handler = type("Handler", (_Handler,), {"site": site.absolute(), "reporter": reporter})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def root_urls(site: Path, base: str) -> list[tuple[str, str]]:
    """(label, URL) of each root the site lists in roots.json."""
    try:
        listing = json.loads((site / index.ROOTS_FILE).read_text(encoding="utf-8"))
        roots = listing["roots"]
    except (OSError, ValueError, KeyError, TypeError):
        return [("site", f"{base}/")]
    return [(str(r.get("tag") or "all wheels"), f"{base}/{r['path']}") for r in roots]


def serve(site: Path, host: str, port: int, reporter: Reporter) -> None:
    """Serve until Ctrl-C, saying the URL of every root first."""
    server = make_server(site, host, port, reporter=reporter)
    base = server_url(server)
    reporter.info(f"serving {site} at {base}/ (Ctrl-C to stop); roots (pip/uv --index-url):")
    width = max((len(label) for label, _ in root_urls(site, base)), default=0)
    for label, url in root_urls(site, base):
        reporter.info(f"  {label:<{width}}  {url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        reporter.info("stopped")
    finally:
        server.server_close()
