"""The one test of "is this a number" used by every argument check and every reader of logged values.

``bool`` is a subclass of ``int`` in Python, so ``isinstance(True, int)`` holds; a step count of ``True``
or a logged reward of ``False`` is a mistake, never a number. numpy's scalars count (numpy registers them
with `numbers`).
"""

from __future__ import annotations

import numbers
from typing import Any


def is_int(value: Any) -> bool:
    """True for a Python or numpy integer that is not a bool.

    Examples:
        >>> import numpy as np
        >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
        (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """True for a Python or numpy real number (NaN and infinities included) that is not a bool.

    Examples:
        >>> import numpy as np
        >>> is_real(0.5), is_real(np.float32(0.5)), is_real(2), is_real(False), is_real("1")
        (True, True, True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def real_or_none(value: Any) -> float | None:
    """``float(value)`` for a real number (see `is_real`), else None: how logged values are read back.

    Examples:
        >>> real_or_none(1), real_or_none("0.5"), real_or_none(None), real_or_none(True)
        (1.0, None, None, None)
    """
    return float(value) if is_real(value) else None
