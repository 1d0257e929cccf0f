"""Progress bars: one factory, so that every bar in the package looks and behaves the same.

``tqdm`` here has tqdm's interface. (A notebook-safe bar that survives save and reopen replaces it: see issue 17.)
"""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["tqdm"]
