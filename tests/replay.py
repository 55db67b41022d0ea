"""Record what a real build container answered to buildsteps.build_one, and replay it.

`record` (run by tests/data/build-steps/record.py against a real engine) wraps a
container.Container and keeps every call the steps make — argv, environment, working directory,
exit code, output lines, and the files copied out — in `capture.json` plus the files beside it.
`Replay` is a buildsteps.Exec that answers the same calls in the same order from a capture, and
fails the test when the steps ask something else, so the unit tests run the real steps without
Docker. `Inline` is the scheduler both use: no threads, no slots to wait for."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from wheelfarm import buildsteps
from wheelfarm.hostenv import HostSettings

T = TypeVar("T")


def _argv(argv: Sequence[str] | str) -> list[str] | str:
    return argv if isinstance(argv, str) else list(argv)


class Done(Generic[T]):
    """A step that ran at once: the steps' calls come in one order, the one recorded."""

    def __init__(self, result: T) -> None:
        self._result = result

    def join(self) -> T:
        return self._result


class Inline:
    """buildsteps.Scheduler that runs everything at once on the calling thread."""

    def __init__(self, container: Any = None) -> None:
        self.statuses: list[str] = []
        self.container = container  # what `isolated` hands out: the recorded one
        self.isolations = 0

    def check(self) -> None:
        pass

    def beside(self, call: Callable[[], T]) -> Done[T]:
        return Done(call())

    @contextlib.contextmanager
    def packages(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def build_slot(self, waiting: Callable[[], None]) -> Iterator[None]:
        yield

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def compile_cores(self) -> int:
        return 1

    def isolated(self, on_disk: bool = False) -> Any:
        assert self.container is not None, "this build was not expected to need a container"
        self.isolations += 1
        return self.container


class Recorder:
    """Wraps a real container; `calls` is what it answered, `save` writes the capture."""

    def __init__(self, container: Any, files: Path) -> None:
        self._c = container
        self._files = files
        self.calls: list[dict[str, Any]] = []

    @property
    def host_settings(self) -> HostSettings | None:
        return None  # captures never depend on the recording host's CA or proxies

    @property
    def in_memory(self) -> tuple[str, ...]:
        return tuple(self._c.in_memory)

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
        lines: list[str] = []

        def both(line: str) -> None:
            lines.append(line)
            if on_output is not None:
                on_output(line)

        code = int(
            self._c.run(argv, env=env, workdir=workdir, on_output=both, timeout=timeout, user=user)
        )
        self.calls.append(
            {
                "verb": "run",
                "argv": _argv(argv),
                "env": dict(env or {}),
                "workdir": workdir,
                "user": user,
                "code": code,
                "lines": lines,
            }
        )
        return code

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str:
        text = str(self._c.output(argv, check=check))
        self.calls.append({"verb": "output", "argv": _argv(argv), "text": text})
        return text

    def copy_in(self, host_path: Path, container_dir: str) -> str:
        inside = str(self._c.copy_in(host_path, container_dir))
        call = {"verb": "copy_in", "name": host_path.name, "to": container_dir}
        self.calls.append({**call, "inside": inside})
        return inside

    def copy_out(self, container_path: str, host_dir: Path) -> Path:
        out = Path(self._c.copy_out(container_path, host_dir))
        kept = []
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            relative = path.relative_to(out).as_posix()
            (self._files / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self._files / relative)
            kept.append(relative)
        self.calls.append({"verb": "copy_out", "path": container_path, "files": kept})
        return out


class Replay:
    """buildsteps.Exec answering from a capture, in order."""

    def __init__(self, calls: Sequence[Mapping[str, Any]], files: Path) -> None:
        self._calls = list(calls)
        self._files = files
        self.asked: list[str] = []

    @property
    def host_settings(self) -> HostSettings | None:
        return None

    @property
    def in_memory(self) -> tuple[str, ...]:
        return ()  # a replay never runs out of room

    def _next(self, verb: str, **asked: Any) -> Mapping[str, Any]:
        assert self._calls, f"the steps made a call the real run did not: {verb} {asked}"
        call = self._calls.pop(0)
        self.asked.append(verb)
        assert call["verb"] == verb, f"expected {call['verb']} {call}, the steps asked {verb}"
        for name, value in asked.items():
            assert call[name] == value, f"{verb} {name}: recorded {call[name]!r}, got {value!r}"
        return call

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
        call = self._next("run", argv=_argv(argv), env=dict(env or {}), workdir=workdir, user=user)
        for line in call["lines"]:
            if on_output is not None:
                on_output(line)
        return int(call["code"])

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str:
        return str(self._next("output", argv=_argv(argv))["text"])

    def copy_in(self, host_path: Path, container_dir: str) -> str:
        return str(self._next("copy_in", name=host_path.name, to=container_dir)["inside"])

    def copy_out(self, container_path: str, host_dir: Path) -> Path:
        call = self._next("copy_out", path=container_path)
        out = host_dir / Path(container_path).name
        for relative in call["files"]:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._files / relative, out / relative)
        out.mkdir(parents=True, exist_ok=True)
        return out

    @property
    def left(self) -> int:
        return len(self._calls)


def save(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


__all__ = ["Inline", "Recorder", "Replay", "buildsteps", "load", "save"]


def context(
    case: Mapping[str, Any], container: Any, log: buildsteps.BuildLog, sdist: Path | None = None
) -> buildsteps.BuildContext:
    """The BuildContext a capture was recorded with (the sdist itself is only named: copy_in is
    replayed, not done)."""
    from wheelfarm import imagefacts, plan, recipes, targets
    from wheelfarm.fetch import Source

    target = targets.get(case["target"])
    python = target.python_for(case["python"])
    spec = plan.Spec(
        kind=case["spec"]["kind"], name=case["spec"]["name"], version=case["spec"]["version"]
    )
    s = case["source"]
    source = Source(
        spec=spec,
        path=sdist or Path(s["file"]),
        sha256=s["sha256"],
        name=s["name"],
        version=s["version"],
        top=s["top"],
        source_date_epoch=s["source_date_epoch"],
        pure=s["pure"],
        origin=s["origin"],
    )
    recipe = recipes.parse(case["recipe"], source.name, "capture")
    facts = imagefacts.ImageFacts.from_json(case["facts"])
    tag_set = facts.tag_set([])
    return buildsteps.BuildContext(
        container=container,
        target=target,
        python=python,
        spec=spec,
        source=source,
        recipe=recipe,
        facts=facts,
        tag_set=tag_set,
        key=case["key"],
        paths=buildsteps.BuildPaths.of(source, case["key"], case["tools"]),
        env=buildsteps.build_env(source, recipe, target, case["installer"]),
        log=log,
        budget=buildsteps.Budget(None),
        installer=case["installer"],
        installer_env=case["installer_env"],
    )
