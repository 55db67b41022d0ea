"""views: plain names and one consumer's choice among distro-tagged wheels."""

from __future__ import annotations

import pytest

from wheelfarm import rules, views
from wheelfarm.errors import BadInput


def consumer(distro: str, version: str, arch: str = "x86_64") -> rules.TagSet:
    return rules.tag_set({"ID": distro, "VERSION_ID": version}, arch, rules.image_sources([]))


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "lxml-5.3.0-cp311-cp311-linux_x86_64_debian_12.whl",
            "lxml-5.3.0-cp311-cp311-linux_x86_64.whl",
        ),
        (
            "Foo_Bar-1.0-1build-cp39-cp39-linux_aarch64_ubuntu_22_04.whl",
            "Foo_Bar-1.0-1build-cp39-cp39-linux_aarch64.whl",
        ),
        (
            "x-1.0-cp312-cp312-linux_x86_64_rhel_9.linux_x86_64_rocky_9.whl",
            "x-1.0-cp312-cp312-linux_x86_64.whl",
        ),
        ("x-1.0-py3-none-any.whl", "x-1.0-py3-none-any.whl"),
        (
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        ("x-1.0-cp311-cp311-linux_x86_64.whl", "x-1.0-cp311-cp311-linux_x86_64.whl"),
    ],
)
def test_plain_filename(filename: str, expected: str) -> None:
    assert views.plain_filename(filename) == expected


def test_plain_filename_rejects_non_wheels() -> None:
    with pytest.raises(BadInput, match="not a valid wheel file name"):
        views.plain_filename("lxml-5.3.0.tar.gz")


WHEELHOUSE = [
    "lxml-5.3.0-cp39-cp39-linux_x86_64_debian_11.whl",
    "lxml-5.3.0-cp311-cp311-linux_x86_64_debian_12.whl",
    "lxml-5.3.0-cp313-cp313-linux_x86_64_debian_13.whl",
    "lxml-5.3.0-cp311-cp311-linux_x86_64.whl",
    "lxml-5.2.0-cp311-cp311-linux_x86_64.whl",
    "lxml-5.3.0-cp312-cp312-linux_x86_64_rhel_9.whl",
    "lxml-5.3.0-cp311-cp311-linux_aarch64_debian_12.whl",
    "six-1.16.0-py2.py3-none-any.whl",
]


def test_debian_12_gets_its_own_build_over_the_plain_one() -> None:
    assert views.select_for_consumer(WHEELHOUSE, consumer("debian", "12")) == [
        "lxml-5.3.0-cp311-cp311-linux_x86_64_debian_12.whl",
        "lxml-5.2.0-cp311-cp311-linux_x86_64.whl",
        "six-1.16.0-py2.py3-none-any.whl",
    ]


def test_choice_does_not_depend_on_input_order() -> None:
    tagset = consumer("debian", "12")
    assert views.select_for_consumer(reversed(WHEELHOUSE), tagset) == (
        views.select_for_consumer(WHEELHOUSE, tagset)
    )


def test_rules_apply_rocky_accepts_rhel() -> None:
    chosen = views.select_for_consumer(WHEELHOUSE, consumer("rocky", "9.3"))
    assert "lxml-5.3.0-cp312-cp312-linux_x86_64_rhel_9.whl" in chosen
    assert not any("debian" in name for name in chosen)


def test_other_arch_is_left_out() -> None:
    chosen = views.select_for_consumer(WHEELHOUSE, consumer("debian", "12", "aarch64"))
    assert chosen == [
        "lxml-5.3.0-cp311-cp311-linux_aarch64_debian_12.whl",
        "six-1.16.0-py2.py3-none-any.whl",
    ]


def test_higher_build_number_wins_at_equal_rank() -> None:
    chosen = views.select_for_consumer(
        [
            "x-1.0-1-cp311-cp311-linux_x86_64_debian_12.whl",
            "x-1.0-2-cp311-cp311-linux_x86_64_debian_12.whl",
        ],
        consumer("debian", "12"),
    )
    assert chosen == ["x-1.0-2-cp311-cp311-linux_x86_64_debian_12.whl"]


def test_wheel_accepted_by_nobody_gives_nothing() -> None:
    assert (
        views.select_for_consumer(
            ["x-1.0-cp311-cp311-linux_x86_64_debian_11.whl"], consumer("debian", "12")
        )
        == []
    )
