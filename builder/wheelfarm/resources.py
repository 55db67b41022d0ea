"""Where the shipped data directories are: `images/` and `recipes/` live at the repository root in
a checkout (editable install) and inside the package (`wheelfarm/images`, `wheelfarm/recipes`)
in an installed wheel, where pyproject.toml force-includes them."""

from __future__ import annotations

from pathlib import Path

from wheelfarm.errors import EnvironmentProblem

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str, package: Path = _PACKAGE) -> Path:
    installed = package / name
    if installed.is_dir():
        return installed
    checkout_root = package.parent.parent
    in_checkout = checkout_root / name
    if in_checkout.is_dir() and (checkout_root / "pyproject.toml").is_file():
        return in_checkout
    raise EnvironmentProblem(
        f"wheelfarm's {name}/ directory is missing (looked in {installed} and {in_checkout})",
        hint="reinstall wheelfarm: pip install --force-reinstall wheelfarm",
    )


def images_dir() -> Path:
    return data_dir("images")


def recipes_dir() -> Path:
    return data_dir("recipes")
