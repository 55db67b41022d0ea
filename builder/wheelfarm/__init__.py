"""wheelfarm: build, verify and serve distro-tagged Python wheels in real distro containers."""

__version__ = "0.1.0"
