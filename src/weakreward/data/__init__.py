"""Training and evaluation data: `Problem` records, the paper's verl parquet files, scarce-data sampling
and data-level label noise."""

from weakreward.data.arithmetic import arithmetic_problems
from weakreward.data.label_noise import corrupt_labels, corrupted_fraction, mine_wrong_answers
from weakreward.data.parquet import load_verl_parquet
from weakreward.data.problem import Problem
from weakreward.data.sampling import scarce

__all__ = [
    "Problem",
    "arithmetic_problems",
    "corrupt_labels",
    "corrupted_fraction",
    "load_verl_parquet",
    "mine_wrong_answers",
    "scarce",
]
