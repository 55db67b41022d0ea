"""`wheelfarm serve`: a real server on 127.0.0.1 in a thread, spoken to over HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wf_cli import clean_env
from wf_wheels import make_sdist, make_wheel

from wheelfarm import index, serve

D12 = "cp311-cp311-linux_x86_64_debian_12"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    wh = tmp_path / "wheelhouse"
    wh.mkdir()
    make_wheel(wh, "demo", "1.0", D12)
    make_sdist(wh, "demo", "1.0")
    (tmp_path / "secret.txt").write_text("outside the site")
    index.build_site(wh, tmp_path / "site", arch="x86_64")
    return tmp_path / "site"


@pytest.fixture
def server(site: Path) -> Iterator[tuple[str, int]]:
    httpd = serve.make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def get(
    address: tuple[str, int], path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_get(address: tuple[str, int], path: str) -> bytes:
    """A request line sent as is, without any client-side path normalisation."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PIP_ACCEPT, "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.latest+json", "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html; charset=utf-8"),
        (None, "text/html; charset=utf-8"),
        ("*/*", "text/html; charset=utf-8"),
        ("application/*", "application/vnd.pypi.simple.v1+html"),
        (
            "application/vnd.pypi.simple.v1+json;q=0.2, text/html;q=0.9",
            "text/html; charset=utf-8",
        ),
        ("text/html;q=0, */*;q=0.1", "application/vnd.pypi.simple.v1+html"),
    ],
)
def test_index_pages_are_negotiated(
    server: tuple[str, int], accept: str | None, expected: str
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    status, got, body = get(server, "/linux_x86_64_debian_12/simple/demo/", headers)
    assert status == 200
    assert got["Content-Type"] == expected
    assert got["Vary"] == "Accept"
    if "json" in expected:
        page = json.loads(body)
        assert page["name"] == "demo"
        names = [f["filename"] for f in page["files"]]
        assert names == ["demo-1.0-cp311-cp311-linux_x86_64.whl", "demo-1.0.tar.gz"]
    else:
        assert b'<a href="demo-1.0-cp311-cp311-linux_x86_64.whl#sha256=' in body


@pytest.mark.parametrize("accept", ["application/xml", "text/html;q=0, application/json"])
def test_nothing_acceptable_is_406(server: tuple[str, int], accept: str) -> None:
    status, _, body = get(server, "/simple/", {"Accept": accept})
    assert status == 406
    assert b"application/vnd.pypi.simple.v1+json" in body


def test_files_have_types_and_caching_headers(server: tuple[str, int], site: Path) -> None:
    path = "/linux_x86_64_debian_12/simple/demo/demo-1.0-cp311-cp311-linux_x86_64.whl"
    status, headers, body = get(server, path)
    assert status == 200
    assert headers["Content-Type"] == "application/octet-stream"
    assert body == (site / path.lstrip("/")).read_bytes()
    assert headers["Content-Length"] == str(len(body))
    assert headers["Cache-Control"] == "no-cache"
    assert headers["ETag"].startswith('"')
    assert headers["Last-Modified"].endswith("GMT")
    status, again, body = get(server, path, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert again["ETag"] == headers["ETag"]
    status, _, _ = get(server, path, {"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304
    status, headers, body = get(server, path + ".metadata")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert body.startswith(b"Metadata-Version:")
    status, headers, body = get(server, "/roots.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["roots"][0]["path"] == "simple/"


def test_missing_paths_and_redirects(server: tuple[str, int]) -> None:
    assert get(server, "/simple/nothing-here/")[0] == 404
    assert get(server, "/linux_x86_64_debian_12/")[0] == 404  # a directory without an index
    status, headers, _ = get(server, "/simple")
    assert status == 301
    assert headers["Location"] == "/simple/"
    status, _, body = get(server, "/")
    assert status == 200
    assert b"linux_x86_64_debian_12/simple/" in body


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/simple/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/simple/%2E%2E/%2e%2e/secret.txt",
        "/simple/..%2f..%2fsecret.txt",
    ],
)
def test_paths_outside_the_site_are_refused(server: tuple[str, int], path: str) -> None:
    response = raw_get(server, path)
    assert response.startswith(b"HTTP/1.1 403"), response[:60]
    assert b"outside the site" not in response


def test_symlinks_leading_out_are_refused(server: tuple[str, int], site: Path) -> None:
    tree = site.resolve()
    (tree / "simple" / "escape").symlink_to(site.parent / "secret.txt")
    (tree / "simple" / "escape-dir").symlink_to(site.parent)
    for path in ("/simple/escape", "/simple/escape-dir/secret.txt"):
        status, _, body = get(server, path)
        assert status == 403
        assert b"outside the site" not in body
    assert get(server, "/.hidden")[0] == 404


def test_a_regenerated_site_is_served_at_once(server: tuple[str, int], site: Path) -> None:
    wh = site.parent / "wheelhouse"
    before = get(server, "/simple/", {"Accept": "application/vnd.pypi.simple.v1+json"})
    assert json.loads(before[2])["projects"] == [{"name": "demo"}]
    make_wheel(wh, "newcomer", "2.0", D12)
    index.build_site(wh, site, arch="x86_64")
    after = get(server, "/simple/", {"Accept": "application/vnd.pypi.simple.v1+json"})
    assert json.loads(after[2])["projects"] == [{"name": "demo"}, {"name": "newcomer"}]
    assert after[1]["ETag"] != before[1]["ETag"]


def test_negotiate_ties_and_order() -> None:
    offered = [serve.TEXT_HTML, serve.HTML_TYPE, serve.JSON_TYPE]
    assert serve.negotiate(f"{serve.JSON_TYPE}, text/html", offered) == serve.JSON_TYPE
    assert serve.negotiate(f"text/html, {serve.JSON_TYPE}", offered) == serve.TEXT_HTML
    assert serve.negotiate("text/*;q=0.5, */*;q=0.4", offered) == serve.TEXT_HTML
    assert serve.negotiate("application/json", offered) is None
    assert serve.negotiate("text/html;q=bogus", offered) is None


def test_cli_prints_each_root_url_and_serves(site: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "serve", str(site), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "linux_x86_64_ubuntu_24_04" in line:
                break
        text = "".join(lines)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/simple/" in text
        assert f"{base}/linux_x86_64_debian_12/simple/" in text
        assert get(("127.0.0.1", port), "/linux_x86_64_debian_12/simple/demo/")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)
    missing = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "serve", str(site.parent / "nope")],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
