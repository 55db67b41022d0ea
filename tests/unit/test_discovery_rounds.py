"""buildsteps.build_rounds against a small simulated Debian container: a failed attempt's missing
header is looked up in the (reduced) Contents index, installed, and the next attempt starts
from a fresh extraction in the spec's own container; the bound holds; --no-discover stops at
the first failure; the release-day retry resolves the build requirements as of the sdist's
upload and keeps the pins, and says why it does not retry when the index gave no upload time."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay import Inline, context, load
from wheelfarm import buildsteps, discover, recipes
from wheelfarm.hostenv import HostSettings

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "build-steps"
CONTENTS = Path(__file__).resolve().parent.parent / "data" / "providers" / "bookworm-contents.txt"
UPLOADED = "2024-11-13T04:35:36Z"


class Distro:
    """A debian-12 build container that answers the steps as the real one would: the wheel
    compiles once every header it includes is installed (`needs`: header → package), or, with
    `needs_old_requirements`, only with build requirements resolved as of the sdist's upload."""

    def __init__(
        self,
        needs: Mapping[str, str],
        *,
        needs_old_requirements: bool = False,
        optional: Mapping[str, str] | None = None,
        breaks_with: frozenset[str] = frozenset(),
        offline: bool = False,
        in_memory: tuple[str, ...] = (),
        fills_memory: bool = False,
        disk_full: bool = False,
    ) -> None:
        self.needs = dict(needs)
        self.old = needs_old_requirements
        # header → package: without it the extension's compile fails and the build carries on
        # without it, as pyyaml's does without yaml.h
        self.optional = dict(optional or {})
        self.breaks_with = breaks_with  # with one of these installed the compile fails
        self.offline = offline  # the compile reaches for a crate registry out of reach
        self.in_memory = in_memory  # the folders it holds in memory
        self.fills_memory = fills_memory  # the compile writes more than they can hold
        self.disk_full = disk_full  # and the disk cannot hold it either
        self.removed: list[list[str]] = []
        self.installed: set[str] = set()
        self.extractions: list[list[str]] = []
        self.env_argv: list[str] = []

    @property
    def host_settings(self) -> HostSettings | None:
        return None

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Callable[[str], None] | None = None,
        timeout: float | None = None,
        user: str = "",
    ) -> int:
        say = on_output or (lambda _line: None)
        words = argv.split() if isinstance(argv, str) else list(argv)
        if isinstance(argv, str) or words[:2] == ["sh", "-c"]:
            text = argv if isinstance(argv, str) else argv[-1]
            self.installed |= set(
                re.findall(r"--no-install-recommends (.*?) \|\|", text)[0].split()
            )
            return 0
        if any(w.endswith("extract_sdist.py") for w in words):
            self.extractions.append(words)
            return 0
        step = next(w for w in words if w in ("env", "requires", "extend", "wheel"))
        if step in ("env", "extend"):
            self.env_argv = words
            say(buildsteps.STEPS_ENV_PATH_LINE + "/wf/envs/0123456789abcdef")
            say(buildsteps.STEPS_ENV_LINE + json.dumps({"setuptools": "75.1.0"}))
            return 0
        if step == "requires":
            say(buildsteps.STEPS_REQUIRES_LINE + "[]")
            return 0
        for header, package in self.needs.items():
            if package not in self.installed:
                say(f"wf.c:1:10: fatal error: {header}: No such file or directory")
                return 1
        for header, package in self.optional.items():
            if package not in self.installed:
                say(f"ext/_wf.c:2:10: fatal error: {header}: No such file or directory")
                say("Error compiling module, falling back to pure Python")
        if (self.fills_memory and self.in_memory) or self.disk_full:
            say("/usr/bin/ld: final link failed: No space left on device")
            return 1
        if self.offline:
            say("error: failed to get `asn1` as a dependency of package `wf v0.1.0`")
            return 1
        if self.installed & self.breaks_with:
            say("ext/_wf.c:40:5: error: too few arguments to function 'wf_parse'")
            return 1
        if self.old and "--exclude-newer" not in self.env_argv:
            say("wf.pyx: Cython.Compiler.Errors.CompileError: the API it used is gone")
            say("wheelfarm: wheel failed: Backend subprocess exited")
            return 1
        return 0

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str:
        words = argv.split() if isinstance(argv, str) else list(argv)
        if "identity" in words:
            return f"{discover.IDENTITY_LINE}{'ab' * 32}\n"
        if "fetch" in words:
            return (
                f"wheelfarm-contents-lines: 30 from 2 files\n{discover.IDENTITY_LINE}{'ab' * 32}\n"
            )
        if words[:2] == ["rm", "-rf"]:
            self.removed.append(words[2:])
            return ""
        if words[0] == "dpkg-query":
            return "\n".join(sorted(self.installed))
        if words[:2] == ["sh", "-c"] and "strace" in words[-1]:
            return "/usr/bin/strace\n" if "strace" in self.installed else ""
        return ""

    def copy_in(self, host_path: Path, container_dir: str) -> str:
        return f"{container_dir}/{host_path.name}"

    def copy_out(self, container_path: str, host_dir: Path) -> Path:
        host_dir.mkdir(parents=True, exist_ok=True)
        out = host_dir / Path(container_path).name
        with gzip.open(out, "wt", encoding="utf-8") as handle:
            handle.write(CONTENTS.read_text(encoding="utf-8"))
        return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    discover._INDEXES.clear()


def start(
    tmp_path: Path, distro: Distro, **changes: object
) -> tuple[buildsteps.BuildContext, buildsteps.BuildLog]:
    case = load(CAPTURES / "built" / "capture.json")
    log = buildsteps.BuildLog(tmp_path / "wheelhouse", "rounds.log")
    ctx = context(case, distro, log)
    source = dataclasses.replace(ctx.source, upload_time=UPLOADED)
    ctx = dataclasses.replace(ctx, recipe=recipes.Recipe(project="markupsafe"), source=source)
    return dataclasses.replace(ctx, **changes), log  # type: ignore[arg-type]


def test_a_missing_header_is_installed_and_the_build_starts_again_fresh(tmp_path: Path) -> None:
    distro = Distro({"lber.h": "libldap-dev", "curl/curl.h": "libcurl4-openssl-dev"})
    ctx, log = start(tmp_path, distro)
    sched = Inline(distro)
    done, _env, _durations, rounds = buildsteps.build_rounds(ctx, sched)
    log.close()
    assert rounds == 3
    assert [c.package for c in done.found] == ["libldap-dev", "libcurl4-openssl-dev"]
    assert "openssl > gnutls > nss" in done.found[1].why
    assert distro.installed == {"libldap-dev", "libcurl4-openssl-dev"}
    assert sched.isolations == 1  # into the spec's own container once, then it stays there
    assert len(distro.extractions) == 3
    for later in distro.extractions[1:]:  # each later attempt removes the last one's source
        assert later[later.index("--remove") + 1] == ctx.paths.src
    text = log.final.read_text()
    assert "discovery: missing header lber.h" in text
    assert "header lber.h → libldap-dev (the only package with usr/include/lber.h)" in text
    assert "round 3 of at most 6: found libldap-dev, libcurl4-openssl-dev" in text
    assert discover.contents_path("ab" * 32).is_file()  # kept for the next run


def test_no_discover_stops_at_the_first_failure(tmp_path: Path) -> None:
    distro = Distro({"lber.h": "libldap-dev"})
    ctx, log = start(tmp_path, distro, discover=False)
    with pytest.raises(buildsteps.StepFailed, match=r"lber\.h"):
        buildsteps.build_rounds(ctx, Inline(distro))
    log.close()
    assert distro.installed == set() and len(distro.extractions) == 1


def test_the_rounds_are_bounded(tmp_path: Path) -> None:
    headers = ["zlib.h", "lber.h", "tiffio.h", "mysql.h", "ft2build.h", "openssl/ssl.h", "x.h"]
    packages = ["zlib1g-dev", "libldap-dev", "libtiff-dev", "libmariadb-dev", "libfreetype-dev",
                "libssl-dev", "wf-never"]  # fmt: skip
    distro = Distro(dict(zip(headers, packages, strict=True)))
    ctx, log = start(tmp_path, distro)
    with pytest.raises(buildsteps.StepFailed, match=r"ssl\.h"):
        buildsteps.build_rounds(ctx, Inline(distro))
    log.close()
    assert len(distro.extractions) == discover.ROUNDS


def test_the_release_day_retry_pins_what_worked(tmp_path: Path) -> None:
    distro = Distro({}, needs_old_requirements=True)
    ctx, log = start(tmp_path, distro)
    done, _env, _durations, _rounds = buildsteps.build_rounds(ctx, Inline(distro))
    log.close()
    assert distro.env_argv[distro.env_argv.index("--exclude-newer") + 1] == UPLOADED
    assert done.pinned == ("setuptools==75.1.0",)
    assert done.effective_recipe.constraints_for(ctx.source.version) == ("setuptools==75.1.0",)
    text = log.final.read_text()
    assert f"release-day retry: build requirements as of {UPLOADED}" in text
    # The log named nothing missing: strace (not in this image) was installed to trace it.
    assert "once more, with strace" in text and "strace" in distro.installed


def test_without_upload_times_there_is_no_retry_and_it_says_so(tmp_path: Path) -> None:
    distro = Distro({}, needs_old_requirements=True)
    ctx, log = start(tmp_path, distro)
    ctx = dataclasses.replace(ctx, source=dataclasses.replace(ctx.source, upload_time=None))
    with pytest.raises(buildsteps.StepFailed):
        buildsteps.build_rounds(ctx, Inline(distro))
    log.close()
    text = log.final.read_text()
    assert "no release-day retry: the index gives no upload times" in text
    assert "[build] constraints" in text
    assert "--exclude-newer" not in distro.env_argv


class FreshContainers(Inline):
    """Hands out a container of the spec's own each time, as the real scheduler does."""

    def __init__(self, make: Callable[[], Distro]) -> None:
        super().__init__(make())
        self.made: list[Distro] = [self.container]
        self._make = make
        self.on_disk = False

    def isolated(self, on_disk: bool = False) -> Distro:
        self.isolations += 1
        self.on_disk = self.on_disk or on_disk
        self.made.append(self._make())
        if self.on_disk:
            self.made[-1].in_memory = ()
        return self.made[-1]


def test_a_build_that_went_on_without_a_header_the_distro_ships_is_built_again_with_it(
    tmp_path: Path,
) -> None:
    sched = FreshContainers(lambda: Distro({}, optional={"yaml.h": "libyaml-dev"}))
    ctx, log = start(tmp_path, sched.container)
    done, _env, _durations, rounds = buildsteps.build_rounds(ctx, sched)
    log.close()
    assert rounds == 2
    assert [c.package for c in done.found] == ["libyaml-dev"]
    assert done.container is sched.made[-1] and sched.made[-1].installed == {"libyaml-dev"}
    assert sched.made[0].installed == set()  # the shared container got nothing
    text = log.final.read_text()
    assert "the build passed, but a compile failed for want of header yaml.h" in text
    assert "round 2 of at most 6: found libyaml-dev" in text


def test_a_quiet_fallback_is_kept_with_no_discover_or_when_no_package_has_the_header(
    tmp_path: Path,
) -> None:
    for optional, discovering in (
        ({"yaml.h": "libyaml-dev"}, False),
        ({"wf-nowhere.h": "-"}, True),
    ):
        distro = Distro({}, optional=optional)
        ctx, log = start(tmp_path / str(discovering), distro, discover=discovering)
        done, _env, _durations, rounds = buildsteps.build_rounds(ctx, Inline(distro))
        log.close()
        assert (rounds, done.found, distro.installed) == (1, (), set())
        assert len(distro.extractions) == 1


def test_when_the_richer_build_fails_it_is_built_again_as_it_passed(tmp_path: Path) -> None:
    sched = FreshContainers(
        lambda: Distro(
            {}, optional={"yaml.h": "libyaml-dev"}, breaks_with=frozenset({"libyaml-dev"})
        )
    )
    ctx, log = start(tmp_path, sched.container)
    done, _env, _durations, rounds = buildsteps.build_rounds(ctx, sched)
    log.close()
    assert rounds == 3
    assert done.found == ()
    assert done.container is sched.made[-1] and sched.made[-1].installed == set()
    assert "that fails; building again as it passed before" in log.final.read_text()


def test_a_failed_download_gets_no_release_day_retry(tmp_path: Path) -> None:
    """Other versions of the build requirements would not reach cargo's registry either."""
    distro = Distro({}, offline=True)
    ctx, log = start(tmp_path, distro)
    with pytest.raises(buildsteps.StepFailed, match="crate download failed: asn1"):
        buildsteps.build_rounds(ctx, Inline(distro))
    log.close()
    assert "--exclude-newer" not in distro.env_argv
    assert "release-day retry" not in log.final.read_text()


def test_a_build_that_fills_its_memory_is_built_again_on_disk_once(tmp_path: Path) -> None:
    memory = buildsteps.IN_MEMORY
    sched = FreshContainers(lambda: Distro({}, in_memory=memory, fills_memory=True))
    ctx, log = start(tmp_path, sched.container)
    done, _env, _durations, rounds = buildsteps.build_rounds(ctx, sched)
    log.close()
    assert rounds == 1  # not a round of discovery: nothing new was installed
    assert done.container is sched.made[-1] and done.container.in_memory == ()
    # What filled the memory went at once, in the container that held it.
    first = sched.made[0]
    assert first.removed == [[ctx.paths.src, ctx.paths.out, ctx.paths.env, ctx.paths.home]]
    text = log.final.read_text()
    assert "the build filled the room it had in memory (/wf/src" in text
    assert "building it again with its files on disk" in text


def test_a_build_out_of_room_on_disk_too_is_not_tried_a_third_time(tmp_path: Path) -> None:
    memory = buildsteps.IN_MEMORY
    sched = FreshContainers(lambda: Distro({}, in_memory=memory, disk_full=True))
    ctx, log = start(tmp_path, sched.container)
    with pytest.raises(buildsteps.StepFailed, match="No space left on device"):
        buildsteps.build_rounds(ctx, sched)
    log.close()
    text = log.final.read_text()
    assert text.count("building it again with its files on disk") == 1
    assert all(made.in_memory == () for made in sched.made[1:])
