"""A real PEP 503 simple index over HTTP on 127.0.0.1, made of static pages: what fetch and
matrix read Requires-Python from, without the network. Only pages are served; the files they
link to do not exist (nothing here downloads an sdist)."""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# project -> [(sdist file name, its data-requires-python or None)]
Pages = Mapping[str, Sequence[tuple[str, str | None]]]


def write_pages(root: Path, pages: Pages) -> None:
    for project, files in pages.items():
        directory = root / "simple" / project
        directory.mkdir(parents=True, exist_ok=True)
        links = []
        for filename, requires in files:
            attribute = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            href = f"../../files/{filename}#sha256={'0' * 64}"
            links.append(f'<a href="{href}"{attribute}>{filename}</a>')
        body = "\n".join(links)
        (directory / "index.html").write_text(
            f"<!DOCTYPE html><html><body>\n{body}\n</body></html>\n"
        )


@contextlib.contextmanager
def serve(root: Path, pages: Pages) -> Iterator[str]:
    """The index's simple URL while the block runs."""
    write_pages(root, pages)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A simple URL on a port nothing listens on: an index that cannot be reached."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
