"""What the audit tests import: the key their stores are made with."""

from __future__ import annotations

import os

KEY = os.urandom(32)
