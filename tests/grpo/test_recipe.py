"""TrainRecipe and DataSpec validation: mistakes are errors when the recipe is read, naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from weakreward.grpo.recipe import DataSpec, TrainRecipe


@pytest.mark.parametrize("spec", [{}, {"builtin": "arithmetic", "path": "train.jsonl"}])
def test_data_spec_needs_exactly_one_of_builtin_or_path_at_validation(spec: dict) -> None:
    with pytest.raises(ValidationError, match="exactly one of builtin or path"):
        DataSpec(**spec)


def test_eval_every_without_eval_data_is_a_validation_error() -> None:
    recipe = {"model": "m", "reward": {"type": "ExactMatch"}, "train_data": {"builtin": "arithmetic"}}
    with pytest.raises(ValidationError, match="grpo.eval_every = 5 but there is no eval_data"):
        TrainRecipe.model_validate({**recipe, "grpo": {"eval_every": 5}})
    ok = TrainRecipe.model_validate({**recipe, "grpo": {"eval_every": 5}, "eval_data": {"builtin": "arithmetic"}})
    assert ok.grpo.eval_every == 5
