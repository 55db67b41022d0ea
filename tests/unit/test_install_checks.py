"""`wheelfarm install WHEEL`: the wheel's python/abi tags are checked against the Python that
will install it (not only its platform tag), and project rules apply as they do for `index`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from wf_cli import clean_env, run
from wf_wheels import make_wheel

from wheelfarm import hosttags, install, rules
from wheelfarm.errors import BadInput

# An interpreter tag the running Python does not load.
OTHER = "cp39" if sys.version_info[:2] != (3, 9) else "cp310"
OWN = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def host_tags() -> dict[str, object]:
    result = run("tags", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_a_wheel_for_another_python_is_refused_before_pip(tmp_path: Path) -> None:
    build_tag = str(host_tags()["default_build"])
    wheel = make_wheel(tmp_path, "x", "1.0", f"{OTHER}-{OTHER}-{build_tag}")
    for extra in ([], ["--python", sys.executable]):
        result = run("install", str(wheel), *extra)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"is for {OTHER}-{OTHER}; the Python that installs does not load" in result.stderr
        assert f"it loads: {OWN}-{OWN}" in result.stderr
        assert "pip install" not in result.stderr  # refused before pip ran


def test_an_interpreter_that_cannot_say_its_tags_is_an_environment_problem(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path, "x", "1.0", f"{OWN}-{OWN}-linux_x86_64")
    result = run("install", str(wheel), "--python", "/bin/false")
    assert result.returncode == 3, result.stderr
    assert "cannot ask /bin/false which wheel tags it loads" in result.stderr


def test_check_wheel_matches_python_abi_and_platform_together(tmp_path: Path) -> None:
    tagset = rules.tag_set({"ID": "rocky", "VERSION_ID": "9.3"}, "x86_64", rules.image_sources([]))
    loads = (("cp311", "cp311"), ("cp311", "abi3"), ("py3", "none"))
    ok = make_wheel(tmp_path, "a", "1.0", "cp311-cp311-linux_x86_64_rhel_9")
    assert install.check_wheel(ok, tagset, loads) == "a-1.0-cp311-cp311-linux_x86_64.whl"
    abi3 = make_wheel(tmp_path, "b", "1.0", "cp39-abi3-linux_x86_64_rocky_9")
    assert install.check_wheel(abi3, tagset, (("cp39", "abi3"),)) == (
        "b-1.0-cp39-abi3-linux_x86_64.whl"
    )
    pure = make_wheel(tmp_path, "c", "1.0", "py3-none-any")
    assert install.check_wheel(pure, tagset, loads) == pure.name
    wrong_abi = make_wheel(tmp_path, "d", "1.0", "cp311-cp311d-linux_x86_64_rhel_9")
    with pytest.raises(BadInput, match="is for cp311-cp311d"):
        install.check_wheel(wrong_abi, tagset, loads)


def test_project_rules_apply_to_install(tmp_path: Path) -> None:
    """A wheel for a distro this host does not accept by default is installable once the
    project's rules (here through WHEELFARM_RULES) say so; pip then runs (a dry run)."""
    data = host_tags()
    arch = str(data["install"][-1]).removeprefix("linux_")  # type: ignore[index]
    wheel = make_wheel(tmp_path, "wfdemo", "1.0", f"py3-none-linux_{arch}_wfnowhere_1")
    refused = run("install", str(wheel))
    assert refused.returncode == 2, refused.stderr
    assert f"is for linux_{arch}_wfnowhere_1" in refused.stderr

    cfg = tmp_path / "rules.cfg"
    cfg.write_text(
        json.dumps({str(data["default_build"]): {"install": [f"linux_{arch}_wfnowhere_1"]}})
    )
    dry = ["--pip-args", "--dry-run --no-deps --no-index"]
    accepted = run("install", str(wheel), *dry, env=clean_env(WHEELFARM_RULES=str(cfg)))
    assert accepted.returncode == 0, accepted.stderr
    assert "Would install wfdemo-1.0" in accepted.stderr


def test_the_root_is_the_one_of_the_asked_architecture() -> None:
    """A site with a root per distro per arch: the host's tags for aarch64 pick the aarch64 root,
    for x86_64 the x86_64 one, from the same os-release."""
    os_release = Path(__file__).parents[1] / "data" / "os-release" / "debian-12"
    roots = ["linux_x86_64_debian_12", "linux_aarch64_debian_12", "linux_aarch64_debian_11"]
    arm = hosttags.describe(os_release, "arm64", [])
    assert install.choose_root(roots, arm) == "linux_aarch64_debian_12"
    intel = hosttags.describe(os_release, "x86_64", [])
    assert install.choose_root(roots, intel) == "linux_x86_64_debian_12"
    with pytest.raises(BadInput):
        install.choose_root(["linux_x86_64_debian_12"], arm)
