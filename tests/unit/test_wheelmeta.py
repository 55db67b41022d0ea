"""wheelmeta: the one reader of core metadata, on METADATA texts shaped like those build backends
write (Metadata 1.2, 2.1, 2.4), and its one editor (Requires-External)."""

from __future__ import annotations

import pytest

from wheelfarm import wheelmeta
from wheelfarm.errors import BadInput

# As distutils-era setuptools wrote it: no Requires-Dist from setup_requires, a Requires-External.
METADATA_1_2 = b"""\
Metadata-Version: 1.2
Name: psycopg2
Version: 2.9.10
Summary: psycopg2 - Python-PostgreSQL Database Adapter
Home-page: https://psycopg.org/
Author: Federico Di Gregorio
License: LGPL with exceptions
Requires-Python: >=3.8
Requires-External: libpq5 (>=10)
Platform: any
Classifier: Programming Language :: Python :: 3

psycopg2 is a PostgreSQL adapter.
Requires-External: not-a-header (this line is the description)
"""

# As setuptools 68 writes it, with a folded line, extras and a CRLF-free long description.
METADATA_2_1 = b"""\
Metadata-Version: 2.1
Name: lxml
Version: 5.3.0
Summary: Powerful and Pythonic XML processing library combining libxml2/libxslt with the
  ElementTree API.
Home-page: https://lxml.de/
Requires-Python: >=3.6
Description-Content-Type: text/x-rst
Provides-Extra: html5
Requires-Dist: html5lib; extra == "html5"
Provides-Extra: html-clean
Requires-Dist: lxml-html-clean; extra ==
 "html-clean"
Requires-External: libxml2 (>=2.9)
Requires-External: libxslt1.1

lxml is a Pythonic, mature binding for the libxml2 and libxslt libraries.
"""

# As hatchling writes it since PEP 639: License-Expression and License-File, and an X- header.
METADATA_2_4 = b"""\
Metadata-Version: 2.4
Name: wheelfarm
Version: 0.1.0
Summary: Build, verify and serve distro-tagged Python wheels
License-Expression: MIT
License-File: LICENSE
Requires-Python: >=3.10
Requires-Dist: packaging>=24.0
Requires-Dist: tomli>=2.0; python_version < '3.11'
X-Wheelfarm-Built-On: linux_x86_64_debian_12
Description-Content-Type: text/markdown

# wheelfarm
"""


def test_metadata_1_2_with_requires_external() -> None:
    meta = wheelmeta.parse(METADATA_1_2)
    assert meta == wheelmeta.Metadata(
        name="psycopg2",
        version="2.9.10",
        requires_python=">=3.8",
        requires_dist=(),
        requires_external=("libpq5 (>=10)",),
    )


def test_metadata_2_1_unfolds_continued_values() -> None:
    meta = wheelmeta.parse(METADATA_2_1)
    assert (meta.name, meta.version, meta.requires_python) == ("lxml", "5.3.0", ">=3.6")
    assert meta.requires_dist == (
        'html5lib; extra == "html5"',
        'lxml-html-clean; extra == "html-clean"',
    )
    assert meta.requires_external == ("libxml2 (>=2.9)", "libxslt1.1")


def test_metadata_2_4_and_an_x_header_are_read_not_refused() -> None:
    meta = wheelmeta.parse(METADATA_2_4)
    assert meta == wheelmeta.Metadata(
        name="wheelfarm",
        version="0.1.0",
        requires_python=">=3.10",
        requires_dist=("packaging>=24.0", "tomli>=2.0; python_version < '3.11'"),
    )


def test_crlf_line_endings_read_the_same() -> None:
    assert wheelmeta.parse(METADATA_2_1.replace(b"\n", b"\r\n")) == wheelmeta.parse(METADATA_2_1)


def test_what_a_file_lacks_is_empty_and_a_single_field_given_twice_keeps_the_first() -> None:
    assert wheelmeta.parse(b"") == wheelmeta.Metadata(None, None)
    assert wheelmeta.parse(b"Metadata-Version: 2.1\n\nName: in-the-body\n").name is None
    twice = wheelmeta.parse(b"Metadata-Version: 2.1\nName: first\nName: second\nVersion: 1\n")
    assert (twice.name, twice.version) == ("first", "1")


def test_a_field_that_is_not_utf_8_is_still_read() -> None:
    meta = wheelmeta.parse(b"Metadata-Version: 2.1\nName: caf\xe9\nVersion: 1.0\nSummary: \xff\n")
    assert (meta.name, meta.version) == ("caf\u00e9", "1.0")


def test_field_names_are_case_insensitive() -> None:
    meta = wheelmeta.parse(
        b"metadata-version: 2.1\nNAME: x\nversion: 1.0\nrequires-external: zlib1g\n"
    )
    assert (meta.name, meta.version, meta.requires_external) == ("x", "1.0", ("zlib1g",))


@pytest.mark.parametrize("text", [METADATA_1_2, METADATA_2_1, METADATA_2_4])
def test_requires_external_edit_keeps_every_other_byte_and_reads_back(text: bytes) -> None:
    edited = wheelmeta.with_requires_external(text, ["libc6", "zlib1g (>=1:1.2)"])
    assert wheelmeta.parse(edited).requires_external == ("libc6", "zlib1g (>=1:1.2)")
    before, after = wheelmeta.parse(text), wheelmeta.parse(edited)
    assert (after.name, after.version, after.requires_dist) == (
        before.name,
        before.version,
        before.requires_dist,
    )
    # Only Requires-External lines of the header block changed; the body is untouched.
    header, _, body = text.partition(b"\n\n")
    new_header, _, new_body = edited.partition(b"\n\n")
    assert new_body == body
    kept = [line for line in header.split(b"\n") if not line.startswith(b"Requires-External:")]
    new_kept = [
        line for line in new_header.split(b"\n") if not line.startswith(b"Requires-External:")
    ]
    assert new_kept == kept
    assert wheelmeta.parse(wheelmeta.with_requires_external(edited, [])).requires_external == ()


def test_requires_external_goes_where_the_first_one_was_keeping_crlf() -> None:
    text = METADATA_2_1.replace(b"\n", b"\r\n")
    edited = wheelmeta.with_requires_external(text, ["libxml2-16"])
    header = edited.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert header[-1] == b"Requires-External: libxml2-16"
    assert b"\n" not in edited.replace(b"\r\n", b"")


def test_requires_external_is_added_at_the_end_of_a_header_block_without_one() -> None:
    edited = wheelmeta.with_requires_external(METADATA_2_4, ["libpq5"])
    header = edited.split(b"\n\n", 1)[0]
    assert header.endswith(b"Description-Content-Type: text/markdown\nRequires-External: libpq5")


def test_dist_info_is_the_one_top_level_directory() -> None:
    members = ["lxml/__init__.py", "lxml-5.3.0.dist-info/METADATA", "lxml-5.3.0.data/x"]
    assert wheelmeta.dist_info(members) == "lxml-5.3.0.dist-info"
    # A vendored package's .dist-info deeper down is not the wheel's.
    assert wheelmeta.dist_info([*members, "lxml/_vendor/six-1.0.dist-info/METADATA"]) == (
        "lxml-5.3.0.dist-info"
    )
    with pytest.raises(BadInput, match=r"no \.dist-info directory"):
        wheelmeta.dist_info(["lxml/__init__.py", "lxml/x.dist-info"])
    with pytest.raises(BadInput, match=r"expected one \.dist-info directory, found 2"):
        wheelmeta.dist_info([*members, "other-1.0.dist-info/METADATA"])
