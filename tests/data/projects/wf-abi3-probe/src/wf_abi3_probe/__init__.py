"""Importing this loads the extension: a glibc too old for it fails here."""

from wf_abi3_probe._native import built_with, token

__all__ = ["built_with", "token"]
