"""Run by the interpreter `wheelfarm install --python` names (any Python 3.8 or newer with pip;
no wheelfarm there): print, as one JSON list, the (python, abi) tag pairs it loads, most
preferred first, as the packaging pip itself vendors orders them."""

from __future__ import annotations

import json

try:
    from pip._vendor.packaging import tags  # type: ignore[import-untyped,unused-ignore]
except ImportError:
    from packaging import tags  # type: ignore[no-redef,unused-ignore]

print(json.dumps(list(dict.fromkeys((t.interpreter, t.abi) for t in tags.sys_tags()))))
