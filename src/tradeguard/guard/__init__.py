"""The request guard: inspect untrusted input before it reaches SQL, HTML, files or shells.

The safe call is :func:`validate_input`; the detectors it combines live in the submodules
(:mod:`~tradeguard.guard.sqli`, :mod:`~tradeguard.guard.xss`,
:mod:`~tradeguard.guard.traversal`, :mod:`~tradeguard.guard.cmdi`) over the shared
decoder in :mod:`~tradeguard.guard.normalize`.
"""

from tradeguard.guard.inspect import (
    InputVerdict,
    Threat,
    escape_html,
    sanitize_text,
    validate_input,
)

__all__ = ["InputVerdict", "Threat", "escape_html", "sanitize_text", "validate_input"]
