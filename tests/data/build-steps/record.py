"""Record the captures tests/unit/test_build_steps_replay.py replays: real builds on the
debian-12 build image, every container call kept (tests/replay.py). Needs a Docker engine and
wheelfarm/debian-12:build-<arch> (scripts/setup makes it). Run from the checkout:

    .venv/bin/python tests/data/build-steps/record.py

Cases: markupsafe 3.0.2 with a system package to install (a build that succeeds), a local
sdist whose C source has an #error (a failing compile), and a recipe naming a package Debian does
not have (a failing package install)."""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/, for replay.py

from replay import Inline, Recorder, context, save  # noqa: E402
from wheelfarm import (  # noqa: E402
    buildsteps,
    elfdeps,
    fetch,
    imagefacts,
    plan,
    recipes,
    targets,
    uvtool,
)
from wheelfarm.container import Container, image_id  # noqa: E402

BROKEN_SETUP = """from setuptools import Extension, setup
setup(name="wf-broken", version="1.0", ext_modules=[Extension("wf_broken", ["broken.c"])])
"""
CASES = {
    "built": ("markupsafe==3.0.2", '[build.packages]\napt = ["libyaml-dev"]\n'),
    "compile-fails": (None, ""),
    "packages-fail": ("markupsafe==3.0.2", '[build.packages]\napt = ["wf-no-such-package"]\n'),
}


def broken_sdist(directory: Path) -> Path:
    path = directory / "wf_broken-1.0.tar.gz"
    members = {
        "setup.py": BROKEN_SETUP,
        "broken.c": "#error wheelfarm test: this source does not compile\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: wf-broken\nVersion: 1.0\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"wf_broken-1.0/{name}")
            info.size, info.mtime = len(data), 1700000000
            archive.addfile(info, io.BytesIO(data))
    return path


def record(name: str, spec_text: str | None, recipe: str, scratch: Path) -> None:
    target = targets.get("debian-12")
    python = target.python
    spec = plan.parse_spec(spec_text or str(broken_sdist(scratch)))
    source = fetch.fetch(spec, scratch / "wheelhouse")
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    (out / "files").mkdir(parents=True)
    uv_cache = scratch / "uv-cache"
    uv_cache.mkdir(exist_ok=True)
    with Container(
        target.build_image,
        scratch=(buildsteps.WORK,),
        mounts={str(uv_cache): buildsteps.UV_CACHE},
        readonly={str(uvtool.binary_dir("x86_64")): uvtool.MOUNT},
    ) as c:
        tools = {
            "probe": c.copy_in(buildsteps.DATA / elfdeps.PROBE_NAME, buildsteps.TOOLS),
            "steps": c.copy_in(buildsteps.STEPS_SCRIPT, buildsteps.TOOLS),
            "extract": c.copy_in(buildsteps.EXTRACT_SCRIPT, buildsteps.TOOLS),
            "contents": c.copy_in(buildsteps.CONTENTS_SCRIPT, buildsteps.TOOLS),
        }
        ident = image_id(target.build_image) or "sha256:unknown"
        venv = f"{python.build_venv}/bin/python"
        facts = imagefacts.read(c, target.build_image, ident, {python.version: venv})
        case = {
            "target": target.name,
            "python": python.version,
            "spec": {"kind": spec.kind, "name": source.name, "version": source.version},
            "source": source.as_json(),
            "recipe": recipe,
            "facts": facts.as_json(),
            "tools": tools,
            "installer": "uv",
            # uv's settings without the recording host's index (a capture names no host).
            "installer_env": {
                **uvtool.uv_environment({}),
                "UV_CACHE_DIR": buildsteps.UV_CACHE,
                "WHEELFARM_UV": uvtool.BINARY,
            },
        }
        recipe_obj = recipes.parse(recipe, source.name, "capture")
        case["key"] = buildsteps.cache_key(
            ident, source, recipe_obj, target, tag_set=facts.tag_set([]), python=python.version
        )  # installer: uv, the default
        recorder = Recorder(c, out / "files")
        log = buildsteps.BuildLog(scratch / "wheelhouse", f"{name}.log")
        ctx = context(case, recorder, log, source.path)
        staging = Path(tempfile.mkdtemp(dir=scratch))
        try:
            built = buildsteps.build_one(ctx, Inline(recorder), staging)
            case["result"] = {"wheel": built.wheel.name, "sha256": built.record["sha256"]}
        except buildsteps.StepFailed as failed:
            case["result"] = {"error": failed.message}
        finally:
            log.close()
    save(out / "capture.json", {**case, "calls": recorder.calls})
    print(f"{name}: {case['result']}")


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        for name, (spec_text, recipe) in CASES.items():
            record(name, spec_text, recipe, Path(temp))


if __name__ == "__main__":
    main()
