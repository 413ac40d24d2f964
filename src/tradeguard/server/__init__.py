"""The tradeguard HTTP service (the ``server`` extra): ``create_app``, and the guard
middleware and dependencies a bot's own FastAPI/Starlette app can mount."""

from tradeguard.server.app import create_app
from tradeguard.server.dependencies import (
    ProblemError,
    current_claims,
    install_problem_handlers,
    require,
)
from tradeguard.server.middleware import GuardMiddleware

__all__ = [
    "GuardMiddleware",
    "ProblemError",
    "create_app",
    "current_claims",
    "install_problem_handlers",
    "require",
]
