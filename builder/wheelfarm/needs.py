"""What a failed build was missing from the system, in one vocabulary shared by diagnosis (which
reads it off a log or a trace) and discovery (which asks the target's package index for it).
Pure: no Docker, no terminal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["header", "pkgconfig", "program", "library", "cmake"]
KINDS: tuple[Kind, ...] = ("header", "pkgconfig", "program", "library", "cmake")


@dataclass(frozen=True, order=True)
class Missing:
    """One thing a build looked for and did not find.

    - header: the include path as the source spells it (`jpeglib.h`, `libxml/parser.h`)
    - pkgconfig: the module name (`libcurl`, `libxml-2.0`)
    - program: the command name (`curl-config`, `cargo`, `gfortran`)
    - library: the linker's name without `-l` or `lib` (`ldap`, `ssl`)
    - cmake: a CMake package as `find_package` names it (`Arrow`, `Eigen3`, `pybind11`), found
      through its `<Name>Config.cmake` or `<name>-config.cmake`
    """

    kind: Kind
    name: str

    def __str__(self) -> str:
        return {
            "header": f"header {self.name}",
            "pkgconfig": f"pkg-config module {self.name}",
            "program": f"program {self.name}",
            "library": f"library -l{self.name}",
            "cmake": f"CMake package {self.name}",
        }[self.kind]
