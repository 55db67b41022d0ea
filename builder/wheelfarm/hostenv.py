"""Which of the host's index, proxy and trust settings a container gets at run time. Pure: reads
the environment and pip's config files, never Docker, never the terminal.

A container reaches package indexes the way the host does (same index, same proxy, same CA bundle
for TLS inspection), but only with settings that mean something inside it: file:// indexes,
find-links and constraint files name host paths and are dropped. The CA bundle is mounted
read-only at CONTAINER_CA_PATH and every trust variable points there. Nothing here is ever baked
into an image; index URLs may carry credentials, so `redact` is what any display uses."""

from __future__ import annotations

import configparser
import contextlib
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Where the host's CA bundle appears inside a container (read-only bind mount).
CONTAINER_CA_PATH = "/etc/wheelfarm/host-ca.pem"

# Trust variables set to CONTAINER_CA_PATH when a bundle is mounted: pip, requests, OpenSSL
# (used by apk, curl-based tools and Python's ssl), curl.
TRUST_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# Host settings that only make sense on the host: dropped, and said so.
HOST_ONLY_PIP_OPTIONS = ("find-links", "constraint", "requirement", "no-index", "config-file")
# pip options from config files that are passed on, with the variable that carries them.
PASSED_PIP_OPTIONS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "trusted-host": "PIP_TRUSTED_HOST",
    "proxy": "PIP_PROXY",
    "timeout": "PIP_DEFAULT_TIMEOUT",
    "default-timeout": "PIP_DEFAULT_TIMEOUT",
    "retries": "PIP_RETRIES",
}
CERT_SOURCES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class HostSettings:
    env: tuple[tuple[str, str], ...]  # variables for the container, in a stable order
    ca_bundle: Path | None  # host file to mount read-only at CONTAINER_CA_PATH
    dropped: tuple[str, ...]  # host-only settings left out, already redacted, for display

    def as_env(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def index_on_loopback(self) -> bool:
        """Whether an index passed on is on the host's loopback (127.0.0.0/8, ::1, localhost),
        which a bridged container cannot reach there."""
        env = self.as_env()
        urls = [env.get("PIP_INDEX_URL", ""), *env.get("PIP_EXTRA_INDEX_URL", "").split()]
        for url in filter(None, urls):
            host = urlsplit(url).hostname or ""
            if host == "localhost":
                return True
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host).is_loopback:
                    return True
        return False

    def describe(self) -> list[str]:
        """Lines safe to show: every URL redacted."""
        lines = [f"{key}={redact_urls(value)}" for key, value in self.env]
        if self.ca_bundle is not None:
            lines.append(f"CA bundle {self.ca_bundle} mounted read-only at {CONTAINER_CA_PATH}")
        lines.extend(f"not passed (host-only): {item}" for item in self.dropped)
        return lines


def redact(url: str) -> str:
    """The URL with any password (or lone token) in its user info replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    shown = f"{user}:***" if sep else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{hostport}"))


def redact_urls(value: str) -> str:
    """A whitespace-separated list of values with each URL redacted."""
    return " ".join(redact(item) for item in value.split())


def pip_config_files(
    environ: Mapping[str, str], home: Path | None = None, prefix: Path | None = None
) -> list[Path]:
    """pip's config files in the order pip loads them (later ones win), as its configuration
    documentation says: global (each XDG_CONFIG_DIRS pip/pip.conf, then /etc/pip.conf); user
    (~/.pip/pip.conf, then $XDG_CONFIG_HOME/pip/pip.conf), left out when PIP_CONFIG_FILE names
    a file that exists; site (`sys.prefix`/pip.conf, the running environment's); then the file
    PIP_CONFIG_FILE names. PIP_CONFIG_FILE=os.devnull turns every file off, as in pip."""
    config_file = environ.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:
        return []
    home = home if home is not None else Path(environ.get("HOME", str(Path.home())))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if not (config_file and Path(config_file).exists()):
        files.append(home / ".pip" / "pip.conf")
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files.append(Path(xdg_home) / "pip" / "pip.conf")
    files.append((prefix if prefix is not None else Path(sys.prefix)) / "pip.conf")
    if config_file:
        files.append(Path(config_file))
    return files


def read_pip_config(files: Sequence[Path]) -> dict[str, str]:
    """Options from [global] then [install] of each existing file, later files winning. A file
    pip itself could not parse is skipped: it is the host's problem, not the container's."""
    options: dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    options[key.replace("_", "-")] = value
    return options


def with_environment(file_options: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """pip's options with its PIP_<OPTION> variables over the config files' values, as pip
    merges them (PIP_INDEX_URL is index-url, PIP_DEFAULT_TIMEOUT default-timeout...)."""
    options = dict(file_options)
    for variable, value in environ.items():
        if variable.startswith("PIP_") and variable != "PIP_CONFIG_FILE":
            options[variable[4:].lower().replace("_", "-")] = value
    return options


def pip_options(
    environ: Mapping[str, str] | None = None, config_files: Sequence[Path] | None = None
) -> dict[str, str]:
    """The host's pip options, as its pip would see them: config files in pip's order, then the
    environment over them. What fetch and from_host both read, merged here only."""
    environ = dict(os.environ) if environ is None else dict(environ)
    files = pip_config_files(environ) if config_files is None else list(config_files)
    return with_environment(read_pip_config(files), environ)


def _is_local_index(url: str) -> bool:
    lowered = url.strip().lower()
    return lowered.startswith("file:") or "://" not in lowered


def _split_urls(value: str) -> list[str]:
    return [item for item in value.split() if item]


def from_host(
    environ: Mapping[str, str] | None = None,
    config_files: Sequence[Path] | None = None,
) -> HostSettings:
    """The settings to pass into a container, from the environment over pip's config files."""
    environ = dict(os.environ) if environ is None else dict(environ)
    files = pip_config_files(environ) if config_files is None else list(config_files)
    file_options = read_pip_config(files)
    options = with_environment(file_options, environ)
    values = {
        variable: options[option]
        for option, variable in PASSED_PIP_OPTIONS.items()
        if option in options
    }

    dropped: list[str] = []
    for option in HOST_ONLY_PIP_OPTIONS:
        variable = "PIP_" + option.upper().replace("-", "_")
        if variable in environ:
            dropped.append(f"{variable}={redact_urls(environ[variable])}")
        elif option in file_options:
            dropped.append(f"pip {option} = {redact_urls(file_options[option])}")

    index = values.get("PIP_INDEX_URL")
    if index is not None and _is_local_index(index):
        dropped.append(f"PIP_INDEX_URL={redact(index)}")
        del values["PIP_INDEX_URL"]
    if "PIP_EXTRA_INDEX_URL" in values:
        extras = _split_urls(values["PIP_EXTRA_INDEX_URL"])
        kept = [u for u in extras if not _is_local_index(u)]
        dropped.extend(f"PIP_EXTRA_INDEX_URL entry {redact(u)}" for u in extras if u not in kept)
        if kept:
            values["PIP_EXTRA_INDEX_URL"] = " ".join(kept)
        else:
            del values["PIP_EXTRA_INDEX_URL"]

    for name in PROXY_VARIABLES:
        value = environ.get(name) or environ.get(name.lower())
        if value:
            values[name] = value
            values[name.lower()] = value

    ca_bundle = _ca_bundle(environ, file_options)
    if ca_bundle is not None:
        for name in TRUST_VARIABLES:
            values[name] = CONTAINER_CA_PATH

    return HostSettings(
        env=tuple(sorted(values.items())), ca_bundle=ca_bundle, dropped=tuple(dropped)
    )


def _ca_bundle(environ: Mapping[str, str], pip_options: Mapping[str, str]) -> Path | None:
    """The first CA bundle the host's tools use that exists as a file."""
    candidates = [environ.get("PIP_CERT"), pip_options.get("cert")]
    candidates += [environ.get(name) for name in CERT_SOURCES[1:]]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None
