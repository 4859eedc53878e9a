"""Errors the user can cause. Each message names the problem (and the layer,
field or region it concerns); the CLI prints it without a traceback."""


class UzError(Exception):
    """A user-facing error: bad network, bad option, illegal descriptor."""


class NetworkError(UzError):
    """The network description is malformed or uses something unsupported."""


class DescriptorError(UzError):
    """A descriptor field is illegal. ``code`` is the engine's error code."""

    def __init__(self, message: str, code: int = 0, field: str = ""):
        super().__init__(message)
        self.code = code
        self.field = field


class MemoryLayoutError(UzError):
    """Regions of the external-memory image overlap or do not fit."""
