"""Fixes verified in the live kernel: each candidate re-executed with the fix into an overlay of the
kernel's namespace, under the diagnosis' undo log, and compared with a gradient reference."""

from __future__ import annotations

from .verify import MAX_REPLAYS, Checked, LiveVerification

__all__ = ["MAX_REPLAYS", "Checked", "LiveVerification"]
