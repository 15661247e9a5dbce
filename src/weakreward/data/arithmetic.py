"""Built-in arithmetic problems: chat-message prompts ``a op b`` with exact integer answers.

The demo's task, and a task small models start low enough on to learn from on a CPU.
"""

from __future__ import annotations

import random
from typing import Any

SYSTEM_PROMPT = "Be brief."
FEW_SHOT = (
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = \\boxed{5}"},
)


def arithmetic_problems(
    n: int, *, seed: int = 0, low: int = 1, high: int = 20, ops: str = "+-"
) -> list[dict[str, Any]]:
    """``n`` chat-message arithmetic problems ``a op b`` with ``a, b`` in ``[low, high]``.

    Each prompt carries one worked example (``2 + 3 = \\boxed{5}``) to show the answer format; the answer
    is the exact integer result. Subtractions keep ``a ≥ b`` so results are non-negative.

    Args:
        n: How many problems.
        seed: Seed of the generator (the same seed gives the same problems).
        low: Smallest operand.
        high: Largest operand.
        ops: The operators to draw from.

    Examples:
        >>> p = arithmetic_problems(2, seed=1)
        >>> sorted(p[0]), p[0]["prompt"][-1]["role"]
        (['answer', 'prompt'], 'user')
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, op = rng.randint(low, high), rng.randint(low, high), rng.choice(ops)
        if op == "-" and b > a:
            a, b = b, a
        result = a + b if op == "+" else a - b
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            *FEW_SHOT,
            {"role": "user", "content": f"What is {a} {op} {b}?"},
        ]
        out.append({"prompt": messages, "answer": str(result)})
    return out
