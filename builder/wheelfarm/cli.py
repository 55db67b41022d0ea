"""The command line. Every command has one shape: resolve its settings, call one domain function
that returns data (reporting progress through `ui.ConsoleReporter`), then show that data through
`render`/`ui`. Errors are WheelfarmError subclasses, caught once in `main` and mapped to exit
codes: 0 ok, 1 a build or verification failed, 2 bad input or config, 3 environment.

Help is typer's own rich layout, set up only through typer's settings: the help text of every
command is given explicitly (`_command`), flags have an empty metavar, options without a default
show none.

Each command imports its domain module when it runs, the only wheelfarm imports kept inside
functions (the domain modules import theirs at the top): importing this module takes ~0.07 s,
importing every command's module as well ~0.30 s (measured with `python -c "import ..."` on the
development machine), and `wheelfarm tags` or `--help` should not pay for build's."""

from __future__ import annotations

import errno
import inspect
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from wheelfarm import __version__
from wheelfarm.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, ReaderGone, WheelfarmError

if TYPE_CHECKING:
    from wheelfarm.reporter import Reporter

Command = TypeVar("Command", bound=Callable[..., None])

# rich reads "[word" as the start of a style tag and drops it ("[tool.wheelfarm]" vanished).
_MARKUP_TAG_START = re.compile(r"\[(?=[a-z#/@])")


def _literal(text: str) -> str:
    """Text shown as written under typer's "rich" markup mode: brackets escaped."""
    return _MARKUP_TAG_START.sub(r"\\[", text)


def _help(text: str) -> str:
    """A docstring as help: one line per paragraph, shown literally. typer's rich mode keeps a
    paragraph's line breaks and then wraps again to the terminal, which breaks lines
    mid-sentence. A paragraph with an indented line (an example command) keeps its lines."""
    paragraphs = []
    for block in inspect.cleandoc(text).split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith(" ") for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return _literal("\n\n".join(paragraphs))


def _command(group: typer.Typer, name: str | None = None) -> Callable[[Command], Command]:
    """Register a command with its docstring, made readable by _help, as its help."""

    def register(function: Command) -> Command:
        group.command(name, help=_help(function.__doc__ or ""))(function)
        return function

    return register


def _option(*names: str, **settings: Any) -> Any:  # typer.Option is typed Any
    """An option that takes a value and has no default to show (typer would say [default:
    None] beside it). Its help is shown as written (brackets escaped)."""
    if "help" in settings:
        settings["help"] = _literal(settings["help"])
    return typer.Option(*names, show_default=False, **settings)


def _flag(name: str, help_text: str) -> Any:
    # A flag takes no value: an empty metavar keeps typer from showing a type (<bool>) there.
    return typer.Option(name, help=_literal(help_text), metavar="")


def _host_notes(reporter: Reporter) -> None:
    """Once per run, before any container: which host settings containers do not get."""
    from wheelfarm import runner

    for note in runner.note_host_settings():
        reporter.note(note)


app = typer.Typer(
    name="wheelfarm",
    help=_help(
        "Build Python wheels inside real distro containers, tag them per distro "
        "(linux_x86_64_debian_12), verify them in sibling images and serve them from an index "
        "that stock pip and uv install from.\n\n"
        "Example: wheelfarm build lxml==5.3.0 --target debian-12"
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RulesOption = Annotated[
    list[Path] | None,
    _option(
        "--rules",
        help="A binary-compatibility.cfg to apply; repeatable, the last given wins.",
        metavar="FILE",
    ),
]
JsonOption = Annotated[bool, _flag("--json", "Print one machine-readable JSON object on stdout.")]
EnginesOption = Annotated[
    list[str] | None,
    _option(
        "--engine",
        help="ARCH=URL: send that architecture's images, builds and verifications to another "
        "Docker engine (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://), where "
        "they run natively; repeatable (default: this machine's engine, a foreign arch under "
        "emulation). Also `engines` in [tool.wheelfarm] and WHEELFARM_ENGINES.",
        metavar="ARCH=URL",
    ),
]


def _routed(settings: Any) -> Any:
    """Settings in, the same out, once every architecture's engine is known to the engine
    module (the only importer of docker)."""
    from wheelfarm import container

    container.route(dict(settings.engines))
    return settings


def _images_catalogue(
    arch: list[str] | None, engine: list[str] | None, config_file: Path | None
) -> Any:
    """The `images` commands' targets x archs (config.Settings.catalogue), with every
    architecture's engine routed."""
    from wheelfarm import config

    settings = config.resolve({"archs": arch, "engines": engine}, config_file=config_file)
    return _routed(settings).catalogue


ArchsOption = Annotated[
    list[str] | None,
    _option(
        "--arch",
        help="A CPU architecture to work for (x86_64, aarch64; amd64/arm64 accepted); "
        "repeatable, each target once per architecture (default: this machine's). Also "
        "`archs` in [tool.wheelfarm] and WHEELFARM_ARCHS.",
        metavar="ARCH",
    ),
]
ConfigOption = Annotated[
    Path | None,
    _option(
        "--config",
        help="The pyproject.toml whose [tool.wheelfarm] table to use (default: "
        "$WHEELFARM_CONFIG, else the nearest pyproject.toml with that table, up to the "
        "repository root).",
        metavar="FILE",
    ),
]

# What matrix and build both take: the same plan comes out of both.
SpecsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="NAME==VERSION, a local sdist or a source directory.",
        metavar="SPEC",
        show_default=False,
    ),
]
PythonOption = Annotated[
    str | None,
    _option(help="Python X.Y (default: each target's own).", metavar="X.Y"),
]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"wheelfarm {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Build, verify and serve distro-tagged Python wheels."""


@_command(app)
def tags(  # noqa: PLR0917  # typer passes every option as a parameter
    os_release: Annotated[
        Path | None,
        _option(
            "--os-release",
            help="Describe the host this os-release file belongs to instead of this machine.",
            metavar="FILE",
        ),
    ] = None,
    arch: Annotated[
        str | None,
        _option(
            help="CPU architecture (default: this machine's; amd64/arm64 accepted).",
            metavar="ARCH",
        ),
    ] = None,
    rules: RulesOption = None,
    json_output: JsonOption = False,
    show_default_rules: Annotated[
        bool, _flag("--show-default-rules", "Print the shipped binary-compatibility.cfg and exit.")
    ] = False,
    config_file: ConfigOption = None,
) -> None:
    """Show a host's platform tags: the tag it builds wheels under and the tags it installs.

    Without --os-release it describes this machine, applying --rules (or the project's
    configured rules), the active virtualenv's
    binary-compatibility.cfg, /etc/python/binary-compatibility.cfg and the shipped defaults.
    With --os-release it describes that host as a target image: only --rules and the defaults.

    Examples:

      wheelfarm tags

      wheelfarm tags --os-release rocky/etc/os-release --arch x86_64 --json
    """
    from wheelfarm import config, hosttags, render
    from wheelfarm.rules import DEFAULTS_PATH

    if show_default_rules:
        render.file_text(DEFAULTS_PATH, DEFAULTS_PATH.read_text(encoding="utf-8"))
        return
    settings = config.resolve({"rules": rules}, config_file=config_file)
    result = hosttags.describe(os_release, arch, settings.rules, settings.rule_labels)
    render.tag_set(result, json_output)


@_command(app)
def retag(
    wheels: Annotated[list[Path], typer.Argument(help="Wheels to retag.", metavar="WHEEL")],
    *,
    platform: Annotated[
        str | None,
        _option(
            "--platform",
            help="The distro tag to give, e.g. linux_x86_64_debian_12.",
            metavar="TAG",
        ),
    ] = None,
    os_release: Annotated[
        Path | None,
        _option(
            "--os-release",
            help="Give the build tag of the host this os-release file belongs to (after --rules "
            "and the shipped defaults) instead of --platform.",
            metavar="FILE",
        ),
    ] = None,
    rules: RulesOption = None,
    out_dir: Annotated[
        Path | None,
        _option(
            "-o",
            "--out-dir",
            help="Write the new wheels here (default: beside each input).",
            metavar="DIR",
        ),
    ] = None,
    force: Annotated[bool, _flag("--force", "Overwrite an output wheel that already exists.")] = (
        False
    ),
    config_file: ConfigOption = None,
) -> None:
    """Copy wheels under a distro platform tag (linux_x86_64_debian_12).

    The new wheel's file name, every Tag line of its WHEEL file and its RECORD
    agree; the input is left as it is. Only linux_<arch> (or distro-tagged)
    wheels are retagged: pure-Python, manylinux and musllinux wheels are
    refused, and so is a tag for another CPU. Prints each new path on stdout.

    Examples:

      wheelfarm retag foo-1.0-cp311-cp311-linux_x86_64.whl --platform linux_x86_64_debian_12

      wheelfarm retag dist/*.whl --os-release rocky/etc/os-release -o wheelhouse/
    """
    from wheelfarm import config, render
    from wheelfarm import retag as retag_module

    settings = config.resolve({"rules": rules}, config_file=config_file)
    written = retag_module.run(
        wheels,
        platform_tag=platform,
        os_release=os_release,
        rule_files=settings.rules,
        out_dir=out_dir,
        force=force,
    )
    render.retagged(wheels, written)


images_app = typer.Typer(
    help=_help(
        "Target images: list them, build them, or make Debian ones with no registry.\n\n"
        "Example: wheelfarm images list"
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")
TargetsArgument = Annotated[
    list[str], typer.Argument(help="Target names (see `images list`).", metavar="TARGET")
]
ForceOption = Annotated[bool, _flag("--force", "Redo images that exist instead of reusing them.")]


@_command(images_app, "list")
def images_list(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only these targets (default: all).", metavar="TARGET", show_default=False
        ),
    ] = None,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    json_output: JsonOption = False,
    config_file: ConfigOption = None,
) -> None:
    """Each target, its base, Python(s), and whether its build/runtime images are present.

    Example: wheelfarm images list --json
    """
    from wheelfarm import images, render

    catalogue = _images_catalogue(arch, engine, config_file)
    render.image_list(images.list_named(names or [], catalogue), json_output)


@_command(images_app, "build")
def images_build(
    names: TargetsArgument,
    *,
    base: Annotated[
        str | None,
        _option(
            help="Base image to build on (default: a bootstrapped wheelfarm/base:TARGET when "
            "present, else the distro's registry image).",
            metavar="IMAGE",
        ),
    ] = None,
    force: ForceOption = False,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    json_output: JsonOption = False,
    config_file: ConfigOption = None,
) -> None:
    """Build both stages (wheelfarm/TARGET:build-ARCH, :runtime-ARCH) with the layer cache.

    A foreign architecture is built by the local engine under QEMU's emulation.

    Example: wheelfarm images build alpine-3.20 rockylinux-9
    """
    from wheelfarm import images, render, ui

    catalogue = _images_catalogue(arch, engine, config_file)
    built = images.build_named(names, base, force, ui.ConsoleReporter(), catalogue)
    render.built_images(built, json_output)


@_command(images_app, "bootstrap")
def images_bootstrap(
    names: TargetsArgument,
    *,
    mirror: Annotated[
        str | None,
        _option(
            help="Debian mirror URL (default: the host's apt sources).",
            metavar="URL",
        ),
    ] = None,
    force: ForceOption = False,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    json_output: JsonOption = False,
    config_file: ConfigOption = None,
) -> None:
    """Make Debian target images with no registry, from a Debian mirror.

    debootstrap a base of each architecture from the mirror (a foreign one under QEMU's
    emulation), load it as wheelfarm/base:TARGET-ARCH, then build both stages on it. Images that
    exist are reused.

    Examples:

      wheelfarm images bootstrap debian-11 debian-12 debian-13

      wheelfarm images bootstrap debian-12 --arch aarch64
    """
    from wheelfarm import images, render, ui

    catalogue = _images_catalogue(arch, engine, config_file)
    built = images.bootstrap_named(names, mirror, force, ui.ConsoleReporter(), catalogue)
    render.built_images(built, json_output)


@_command(images_app, "send")
def images_send(
    names: TargetsArgument,
    *,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    json_output: JsonOption = False,
    config_file: ConfigOption = None,
) -> None:
    """Copy target images from this machine's engine to another architecture's engine.

    What `docker save | docker load` does, streamed: the base when present and both stages,
    for each target and each --arch sent to an engine of its own with --engine.

    Example: wheelfarm images send debian-12 --arch aarch64 --engine aarch64=ssh://arm-host
    """
    from wheelfarm import images, render, ui

    sent = images.send_named(
        names, ui.ConsoleReporter(), _images_catalogue(arch, engine, config_file)
    )
    render.built_images(sent, json_output)


@_command(app)
def matrix(  # noqa: PLR0917  # typer passes every option as a parameter
    specs: SpecsArgument = None,
    requirements: Annotated[
        list[Path] | None,
        _option(
            "-r",
            "--requirement",
            help="A pinned requirements file; repeatable.",
            metavar="FILE",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        _option(
            help="A target to plan for; repeatable (default: every known target).",
            metavar="TARGET",
        ),
    ] = None,
    python: PythonOption = None,
    arch: ArchsOption = None,
    runner: Annotated[
        list[str] | None,
        _option(
            help="ARCH=LABEL: the CI runner an architecture's jobs run on, e.g. "
            "aarch64=ubuntu-24.04-arm; repeatable (default: ubuntu-latest, which builds a "
            "foreign architecture under QEMU).",
            metavar="ARCH=LABEL",
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="json: pretty JSON; github: one matrix=<compact JSON> line for $GITHUB_OUTPUT.",
            metavar="FORMAT",
        ),
    ] = "json",
    config_file: ConfigOption = None,
) -> None:
    """Print the build plan as a CI matrix: one job per target x arch that build would run.

    The matrix is {"include": [{"target", "arch", "image", "python", "specs", "runner"}, ...]}.
    Needs no image.

    Examples:

      wheelfarm matrix pyyaml==6.0.2 --target debian-12 --target alpine-3.20

      wheelfarm matrix -r requirements.txt --format github >> "$GITHUB_OUTPUT"
    """
    from wheelfarm import config, render, ui
    from wheelfarm import matrix as matrix_mod

    matrix_mod.check_format(output_format)
    runners = matrix_mod.parse_runners(runner or [])
    settings = config.resolve(
        {
            "specs": specs,
            "requirements": requirements,
            "targets": target,
            "python": python,
            "archs": arch,
        },
        config_file=config_file,
    )
    data = matrix_mod.build_matrix(settings, reporter=ui.ConsoleReporter(), runners=runners)
    render.matrix(data, matrix_mod.render(data, output_format))


# build's own options, named here so that its signature reads as a list of what it takes.
RequirementsOption = Annotated[
    list[Path] | None,
    _option(
        "-r",
        "--requirement",
        help="A pinned requirements file (pip-compile / pip freeze style, --hash checked); "
        "repeatable.",
        metavar="FILE",
    ),
]
BuildTargetOption = Annotated[
    list[str] | None,
    _option(
        help="A target to build on; repeatable (default: every target whose build image is "
        "present).",
        metavar="TARGET",
    ),
]
WheelhouseOption = Annotated[
    Path | None,
    _option(
        help="Where wheels, sdists and records go (default: ./wheelhouse).",
        metavar="DIR",
    ),
]
InstallerOption = Annotated[
    str | None,
    _option(
        "--installer",
        help="What makes the isolated build environments: uv (the default; its static build is "
        "downloaded once on this host and mounted read-only, and environments with the same "
        "resolved packages are shared) or pip (one fresh environment per spec). Also "
        "`installer` in [tool.wheelfarm] and WHEELFARM_INSTALLER.",
        metavar="uv|pip",
    ),
]
BuildJobsOption = Annotated[
    int | None,
    _option(
        "--jobs",
        "-j",
        help="At most N compiles (the build backend's build_wheel) at once, across all "
        "targets (default: the number of cores + 1, so that the last compiles share the cores "
        "rather than wait and run alone). Every target's container starts at once and "
        "prepares up to N + 1 specs (system packages, sdist, isolated build environment and "
        "its downloads) while others compile; a freed slot goes to the compile expected to "
        "take longest.",
        min=1,
        metavar="N",
    ),
]
BuildRecipesOption = Annotated[
    Path | None,
    _option(
        help="A directory of <project>.toml recipes, before the shipped ones.",
        metavar="DIR",
    ),
]
TimeoutOption = Annotated[
    float | None,
    _option(
        help="Give up on one wheel's build after this many seconds.",
        metavar="S",
    ),
]
ScratchMemoryOption = Annotated[
    int | None,
    _option(
        "--scratch-memory",
        help="What a build writes most (its unpacked source and object files, its build "
        "environment, its home) is held in memory, several times cheaper to write than a disk: "
        "at most MIB MiB in each of those folders (default: a quarter of the engine's memory). "
        "A build that fills one is built again with its files on disk, in a container of its "
        "own, and says so in its log (also `scratch-memory` in [tool.wheelfarm], "
        "WHEELFARM_SCRATCH_MEMORY).",
        min=1,
        metavar="MIB",
    ),
]
KeepOnFailureOption = Annotated[
    bool,
    _flag(
        "--keep-on-failure",
        "Leave a failed target's container running and print the command to enter it.",
    ),
]
RebuildOption = Annotated[
    bool, _flag("--force", "Rebuild even when the cached wheel is up to date.")
]
NoVerifyOption = Annotated[
    bool,
    _flag(
        "--no-verify",
        "Skip verifying the wheels in fresh runtime containers (`wheelfarm verify`).",
    ),
]


NoDiscoverOption = Annotated[
    bool,
    _flag(
        "--no-discover",
        "Build only with the recipe's and the sdist's [external] packages: do not look up and "
        "install what a failed build was missing (discovery is on by default; also `discover "
        "= false` in [tool.wheelfarm] and WHEELFARM_DISCOVER=0).",
    ),
]
NoShippedRecipesOption = Annotated[
    bool,
    _flag(
        "--no-shipped-recipes",
        "Ignore the recipes wheelfarm ships (--recipes still apply), so discovery finds what "
        "they say and writes recipes anew (also `shipped-recipes = false`, "
        "WHEELFARM_SHIPPED_RECIPES=0).",
    ),
]


ExternalMappingsOption = Annotated[
    Path | None,
    _option(
        help="A JSON file mapping PEP 725 identifiers (an sdist's [external] table) to each "
        "family's packages, over the shipped mappings (same shape as "
        "data/external-mappings.json; also `external-mappings` in [tool.wheelfarm]).",
        metavar="FILE",
    ),
]


@_command(app)
def build(  # noqa: PLR0917  # typer passes every option as a parameter
    specs: SpecsArgument = None,
    requirements: RequirementsOption = None,
    target: BuildTargetOption = None,
    python: PythonOption = None,
    wheelhouse: WheelhouseOption = None,
    jobs: BuildJobsOption = None,
    recipes: BuildRecipesOption = None,
    rules: RulesOption = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = None,
    scratch_memory: ScratchMemoryOption = None,
    keep_on_failure: KeepOnFailureOption = False,
    force: RebuildOption = False,
    no_verify: NoVerifyOption = False,
    installer: InstallerOption = None,
    no_discover: NoDiscoverOption = False,
    no_shipped_recipes: NoShippedRecipesOption = False,
    external_mappings: ExternalMappingsOption = None,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Build wheels from source in each target's build container and tag them per distro.

    Each target gets one long-lived container (all targets at once; --jobs bounds the compiles):
    the recipe's system packages, a PEP 517 build from the sdist fetched once on the host, ELF
    analysis and Requires-External, then the distro tag from the container's own os-release and
    the rules.
    Wheels land in the wheelhouse with a provenance record in its .wheelfarm/ folder; an
    unchanged rerun starts no container. Then, unless --no-verify, the wheels built are
    verified on those targets as `wheelfarm verify` does (exit 1 if one fails).

    Examples:

      wheelfarm build lxml==5.3.0 --target debian-12

      wheelfarm build -r requirements.txt --wheelhouse dist/ --json
    """
    from wheelfarm import build as build_mod
    from wheelfarm import config, render, ui

    settings = config.resolve(
        {
            "specs": specs,
            "requirements": requirements,
            "targets": target,
            "python": python,
            "wheelhouse": wheelhouse,
            "jobs": jobs,
            "scratch_memory": scratch_memory,
            "recipes": recipes,
            "rules": rules,
            "installer": installer,
            "discover": None if not no_discover else False,
            "shipped_recipes": None if not no_shipped_recipes else False,
            "external_mappings": external_mappings,
            "archs": arch,
            "engines": engine,
        },
        config_file=config_file,
    )
    _routed(settings)
    options = build_mod.Options(
        settings,
        json_output=json_output,
        timeout=timeout,
        keep_on_failure=keep_on_failure,
        force=force,
        installer=settings.installer,
    )
    result = build_mod.build_and_verify(options, ui.ConsoleReporter(), verify_wheels=not no_verify)
    render.build_result(result, json_output)


WheelhouseArgument = Annotated[
    Path | None,
    typer.Argument(
        help="The wheelhouse: distro-tagged wheels and sdists (default: the configured "
        "wheelhouse, else ./wheelhouse).",
        metavar="WHEELHOUSE",
        show_default=False,
    ),
]


recipes_app = typer.Typer(
    help=_help(
        "The recipes discovery wrote: merge one target's into another folder.\n\n"
        "Example: wheelfarm recipes merge debian-11/.wheelfarm/recipes --target debian-11 "
        "--into recipes"
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
)
app.add_typer(recipes_app, name="recipes")


@_command(recipes_app, "merge")
def recipes_merge(
    source: Annotated[
        Path, typer.Argument(help="A .wheelfarm/recipes folder one target's build wrote.")
    ],
    *,
    target: Annotated[
        str, typer.Option("--target", help="The target that wrote them.", metavar="TARGET")
    ],
    into: Annotated[
        Path,
        typer.Option("--into", help="The recipes folder to merge them into.", metavar="DIR"),
    ],
    config_file: ConfigOption = None,
) -> None:
    """Merge the recipes one target's discovery wrote into another folder.

    As a build merges what each target found into
    <wheelhouse>/.wheelfarm/recipes/<project>.toml: a family with no list
    gets the target's, a target whose list differs gets its own. The
    GitHub workflow's index job merges every target's this way.

    Example:

      wheelfarm recipes merge debian-11/.wheelfarm/recipes --target debian-11 --into recipes
    """
    from wheelfarm import config, foundrecipes, ui
    from wheelfarm.errors import BadInput
    from wheelfarm.targets import get

    settings = config.resolve({}, config_file=config_file)
    if not source.is_dir():
        raise BadInput(f"{source} is not a directory of recipes")
    merged = foundrecipes.merge_written(source, into, get(target, settings.catalogue))
    reporter = ui.ConsoleReporter()
    for path in merged:
        reporter.note(f"merged {path.name} from {target} into {path}")


@_command(app)
def index(
    wheelhouse: WheelhouseArgument = None,
    *,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="The site to write (a symlink to its current tree).",
            metavar="SITE",
        ),
    ],
    base_url: Annotated[
        str | None,
        _option(
            "--base-url",
            help="The URL the site will be served at; file links become absolute under it "
            "(default: relative links).",
            metavar="URL",
        ),
    ] = None,
    rules: RulesOption = None,
    json_output: JsonOption = False,
    config_file: ConfigOption = None,
) -> None:
    """Write a static index of a wheelhouse (PEP 503, 691, 658).

    SITE/simple/ lists every wheel under its distro tag, and the sdists.
    SITE/<tag>/simple/, one per consumer tag (each target's build tag,
    each distro tag in the wheelhouse), lists that consumer's best
    wheels under plain linux_<arch> names, which stock pip and uv
    install. Regenerating is atomic and idempotent; corrupt files are
    reported and left out.

    Example:

      wheelfarm index wheelhouse -o site
    """
    from wheelfarm import config, render
    from wheelfarm import index as index_mod

    settings = config.resolve({"wheelhouse": wheelhouse, "rules": rules}, config_file=config_file)
    result = index_mod.build_site(
        settings.wheelhouse,
        output,
        base_url=base_url,
        rule_files=settings.rules,
        catalogue=settings.catalogue,
    )
    render.site(result, json_output)


@_command(app)
def serve(
    site: Annotated[
        Path, typer.Argument(help="A site written by `wheelfarm index`.", metavar="SITE")
    ],
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.", metavar="ADDR")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="Port to listen on (0: any free port).", min=0, max=65535, metavar="PORT"
        ),
    ] = 8000,
) -> None:
    """Serve a site over HTTP (PEP 691: JSON or HTML by Accept header).

    Prints the URL of every root; a regenerated site is served at
    once. Paths outside SITE are refused.

    Example:

      wheelfarm serve site --port 8000
    """
    from wheelfarm import serve as serve_mod
    from wheelfarm import ui

    serve_mod.serve(site, host, port, ui.ConsoleReporter())


@_command(app)
def install(
    requirements: Annotated[
        list[str], typer.Argument(help="Requirements for pip, or wheel files.", metavar="REQ")
    ],
    *,
    index_url: Annotated[
        str | None,
        _option(
            "--index",
            help="The site: its URL (as `wheelfarm serve` prints it) or its directory.",
            metavar="URL",
        ),
    ] = None,
    python: Annotated[
        str | None,
        _option(
            help="The Python whose pip installs (default: this one).",
            metavar="PY",
        ),
    ] = None,
    pip_args: Annotated[
        str | None,
        _option(
            "--pip-args",
            help='More pip arguments, one string (e.g. "--no-deps -q").',
            metavar="ARGS",
        ),
    ] = None,
    arch: Annotated[
        str | None,
        _option(
            help="Install from the root of this architecture's host tags (default: this "
            "machine's), e.g. for pip --platform linux_aarch64 --target DIR.",
            metavar="ARCH",
        ),
    ] = None,
    rules: RulesOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Install with pip from the index root made for this host.

    The root is this host's tag, else its default build tag, else its
    build tag (see `wheelfarm tags`); none there → exit 2 listing the
    roots. A wheel file is refused (exit 2) unless this host accepts its
    platform tag (after the rules: --rules, WHEELFARM_RULES, the project's)
    and the Python that installs (--python) loads its python and ABI tags;
    one accepted is installed under its plain name.

    Examples:

      wheelfarm install lxml==5.3.0 --index http://127.0.0.1:8000/

      wheelfarm install wheelhouse/lxml-5.3.0-cp311-cp311-linux_x86_64_debian_12.whl
    """
    from wheelfarm import config, ui
    from wheelfarm import install as install_mod

    settings = config.resolve({"rules": rules}, config_file=config_file)
    install_mod.install(
        requirements,
        index_url=index_url,
        python=python,
        pip_args=install_mod.split_pip_args(pip_args or ""),
        rule_files=settings.rules,
        rule_labels=settings.rule_labels,
        reporter=ui.ConsoleReporter(),
        arch=arch,
    )


@_command(app)
def publish(
    wheelhouse: WheelhouseArgument = None,
    *,
    repository_url: Annotated[
        str,
        typer.Option(
            "--repository-url", help="The upload URL of a pypiserver or devpi index.", metavar="URL"
        ),
    ],
    target: Annotated[
        str | None,
        _option(
            help="Upload this target's (or consumer tag's) view, plain-named, instead of the "
            "distro-tagged wheels. Only to a repository that holds this view alone.",
            metavar="TARGET",
        ),
    ] = None,
    rules: RulesOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Upload a wheelhouse to an index server (pypiserver, devpi) with twine.

    A file the server already has with the same sha256 is skipped; other bytes under the
    same name (another distro's view) are refused, nothing replaced. Credentials come from
    TWINE_USERNAME/TWINE_PASSWORD or the keyring, never from the
    command line.

    Examples:

      wheelfarm publish wheelhouse --repository-url http://127.0.0.1:8080/

      wheelfarm publish --target debian-12 --repository-url http://127.0.0.1:8081/
    """
    from wheelfarm import config, render, ui
    from wheelfarm import publish as publish_mod

    settings = config.resolve({"wheelhouse": wheelhouse, "rules": rules}, config_file=config_file)
    result = publish_mod.publish(
        settings.wheelhouse,
        repository_url,
        target=target,
        rule_files=settings.rules,
        catalogue=settings.catalogue,
        reporter=ui.ConsoleReporter(),
    )
    render.published(result)


VerifyTargetOption = Annotated[
    list[str] | None,
    _option(
        "--target",
        help="A target to try the wheels on; repeatable (default: every target whose runtime "
        "image is present).",
        metavar="TARGET",
    ),
]
VerifyJobsOption = Annotated[
    int | None,
    _option(
        "--jobs",
        "-j",
        help="Containers run in parallel (default: the number of cores).",
        min=1,
        metavar="N",
    ),
]
VerifyRecipesOption = Annotated[
    Path | None,
    _option(
        help="A directory of <project>.toml recipes (their verify imports and test), before "
        "the shipped ones.",
        metavar="DIR",
    ),
]


@_command(app)
def verify(
    wheelhouse: WheelhouseArgument = None,
    *,
    target: VerifyTargetOption = None,
    rules: RulesOption = None,
    json_output: JsonOption = False,
    jobs: VerifyJobsOption = None,
    recipes: VerifyRecipesOption = None,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Prove each wheel installs and imports on every target whose tags accept it.

    A target accepts a wheel when its runtime image's own os-release, through
    the rules, accepts the wheel's platform tag, and its Python loads the
    wheel's python/abi tags. Each such cell runs in a fresh runtime container
    (no compilers): the Requires-External packages, the Python dependencies
    (from the wheelhouse, else downloaded on this host), then with the network
    cut the target's stock pip installs the wheel under its plain linux_<arch>
    name in a new venv, the recipe's imports (default: the top-level modules)
    and test run. Results are cached (wheel sha256 x runtime image x recipe):
    a rerun starts no container. Reports: WHEELHOUSE/.wheelfarm/verify.json
    and verify.md, logs in .wheelfarm/logs/. Exit 1 when a cell failed.

    Examples:

      wheelfarm verify wheelhouse

      wheelfarm verify wheelhouse --target debian-12 --target debian-13 --json
    """
    from wheelfarm import config, render, ui
    from wheelfarm import verify as verify_mod

    settings = config.resolve(
        {
            "wheelhouse": wheelhouse,
            "rules": rules,
            "jobs": jobs,
            "recipes": recipes,
            "archs": arch,
            "engines": engine,
        },
        config_file=config_file,
    )
    _routed(settings)
    reporter = ui.ConsoleReporter()
    _host_notes(reporter)
    report = verify_mod.run_matrix(
        verify_mod.Request(settings.wheelhouse, None, tuple(target or ()), settings), reporter
    )
    render.verification(report, json_output)
    verify_mod.fail_if_failed(report)


@_command(app)
def probe(
    wheelhouse: WheelhouseArgument = None,
    *,
    target: VerifyTargetOption = None,
    write: Annotated[
        Path | None,
        _option(
            "--write",
            help="Also save the proposed rules to this file.",
            metavar="FILE",
        ),
    ] = None,
    rules: RulesOption = None,
    jobs: VerifyJobsOption = None,
    recipes: VerifyRecipesOption = None,
    arch: ArchsOption = None,
    engine: EnginesOption = None,
    config_file: ConfigOption = None,
) -> None:
    """Measure which binary-compatibility rules hold, and propose them.

    Tries every distro-tagged wheel on every target whose CPU and Python can
    load it, IGNORING the rules (a Debian 11 wheel is really installed on
    Debian 13, under its plain name), exactly as `verify` tries a cell. Prints
    on stdout a binary-compatibility.cfg with only the install rules that
    passed for every wheel tried: keyed by the consumer's default build tag,
    listing the producer tags, each with a `why` naming the wheels and
    targets. Reports: WHEELHOUSE/.wheelfarm/probe.json and probe.md.

    Examples:

      wheelfarm probe wheelhouse --target debian-11 --target debian-12 --target debian-13

      wheelfarm probe wheelhouse --write binary-compatibility.cfg
    """
    from wheelfarm import config, render, ui
    from wheelfarm import probe as probe_mod
    from wheelfarm import verify as verify_mod

    settings = config.resolve(
        {
            "wheelhouse": wheelhouse,
            "rules": rules,
            "jobs": jobs,
            "recipes": recipes,
            "archs": arch,
            "engines": engine,
        },
        config_file=config_file,
    )
    _routed(settings)
    _host_notes(ui.ConsoleReporter())
    request = verify_mod.Request(settings.wheelhouse, None, tuple(target or ()), settings)
    render.probe(probe_mod.propose_rules(request, write, ui.ConsoleReporter()), write)


def _os_error_message(exc: OSError) -> str:
    where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


# A path the user named that cannot be used as asked: bad input (exit 2), not a broken machine.
_USER_PATH_ERRNOS = frozenset({
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY, errno.ENAMETOOLONG,
    errno.ELOOP, errno.EACCES, errno.EPERM, errno.EROFS,
})  # fmt: skip


def main() -> None:
    """Entry point: run the app and turn every expected error into a message and an exit code.
    Usage errors, --help and --version are handled by typer itself (exit 2 and 0). The OSError
    net catches a file-system refusal no module turned into a WheelfarmError (an output path
    under a file, /proc, a full disk): `error: <file>: <reason>`, exit 2 when the path itself is
    unusable (missing, not a directory, no permission, read-only), else 3."""
    try:
        app(prog_name="wheelfarm")
    except SystemExit as exc:
        from wheelfarm import runner

        # typer turns any KeyboardInterrupt into exit 130, SIGINT's; a run SIGTERM ended (it is
        # raised as one, for the same clean-up) exits as a process that signal ended: 143.
        if exc.code == 128 + signal.SIGINT and runner.terminated_by:
            sys.exit(128 + runner.terminated_by[0])
        raise
    except WheelfarmError as exc:
        from wheelfarm import ui

        ui.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except (BrokenPipeError, ReaderGone):
        # The reader went away (`wheelfarm tags --json | head -1`): nothing is wrong, so end
        # quietly as a shell tool killed by SIGPIPE would, and keep the interpreter from writing
        # to the closed pipe again while it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    except OSError as exc:
        from wheelfarm import ui

        ui.error(_os_error_message(exc))
        user_path = exc.filename is not None and exc.errno in _USER_PATH_ERRNOS
        sys.exit(EXIT_BAD_INPUT if user_path else EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        from wheelfarm import ui

        ui.error("interrupted")
        sys.exit(128 + signal.SIGINT)
