"""`load_verl_parquet`: read the verl-style parquet files of arXiv 2604.18574 into `Problem` records.

The released files (``rlvr-weak-supervision/``) share verl's layout but vary in the details, all handled
here:

| column | forms seen |
| --- | --- |
| ``prompt`` | a list of chat messages ``{"role", "content"}`` (numpy array under pandas) |
| ``reward_model.ground_truth`` | a plain string (``"7"``, ``"C"``, ``"\\\\frac{V_0}{2}"``), or a JSON list of strings (``'["18"]'``: every math training row, and the corrupted rows of the noisy graph files) |
| ``extra_info`` | a struct (dict), a JSON string (graph rows), or an Arrow map (list of key/value pairs) |
| ``difficulty`` | a struct ``{model: solved of 16}`` with ints, floats (``13.0``) or nulls, an Arrow map, or null (noisy and eval rows) |
| ``extra_info.model_difficulty`` | math rows: the same count for the DeepSeek-R1-Distill models (from Skywork-OR1) |
| ``extra_info.original_ground_truth`` | noisy math rows: the true label |
"""

from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

from weakreward._numbers import is_real
from weakreward.data.problem import Problem

_KNOWN_COLUMNS = ("prompt", "reward_model", "extra_info", "difficulty", "data_source", "ability")


class _RowError(ValueError):
    pass


def decode_ground_truth(ground_truth: Any) -> tuple[str | None, list[str] | None]:
    """``(answer, all_answers)`` from a verl ``ground_truth``.

    A JSON list of strings (``'["18"]'``) gives its first element as the answer and the whole list as
    ``all_answers``; any other string is the answer itself (``'[A, L^2] = 0'`` is not JSON and stays as
    it is; ``'[1, 2]'`` is a JSON list of numbers, not of strings, and stays as it is too). None gives
    ``(None, None)``; a number becomes its string.

    Examples:
        >>> decode_ground_truth('["18"]')
        ('18', ['18'])
        >>> decode_ground_truth('[0, 1)')
        ('[0, 1)', None)
    """
    if ground_truth is None:
        return None, None
    if isinstance(ground_truth, (list, tuple)):
        items = [str(x) for x in ground_truth]
        return (items[0] if items else None), items
    if not (isinstance(ground_truth, str) or is_real(ground_truth)):
        raise _RowError(f"reward_model.ground_truth must be a string, got {type(ground_truth).__name__}")
    text = str(ground_truth)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            decoded = json.loads(stripped)
        except json.JSONDecodeError:
            return text, None
        if isinstance(decoded, list) and decoded and all(isinstance(x, str) for x in decoded):
            return decoded[0], list(decoded)
    return text, None


_MAX_MAPPING_CHARS = 1_000_000  # a cell larger than this is not metadata; refuse to parse it


def as_mapping(value: Any, column: str = "value") -> dict[str, Any]:
    """A metadata cell of a verl parquet file as a dict, in any of the forms the paper's files store it.

    The one decoder of ``extra_info`` (and ``difficulty``) cells, shared by `load_verl_parquet`, the verl
    adapter and `ReasoningGymVerifier`: a struct (a dict) as is; an Arrow map (a list of key/value pairs,
    as pyarrow and pandas return it; numpy arrays included); a string holding a JSON object (the graph
    files), or a Python dict literal (read with `ast.literal_eval`, never `eval`); None as ``{}``.

    Args:
        value: The cell.
        column: The column's name, for the error message.

    Returns:
        The cell as a new dict.

    Raises:
        ValueError: when the cell is none of these forms (the message names ``column``).

    Examples:
        >>> as_mapping('{"index": 3}'), as_mapping([("index", 3)]), as_mapping({"index": 3}), as_mapping(None)
        ({'index': 3}, {'index': 3}, {'index': 3}, {})
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        if len(value) > _MAX_MAPPING_CHARS:
            raise _RowError(f"{column} is a string of {len(value)} characters, too long to be metadata")
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as error:
            try:
                decoded = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise _RowError(f"{column} is a string but not valid JSON ({error})") from None
        if not isinstance(decoded, Mapping):
            raise _RowError(f"{column} is JSON but not an object (got {type(decoded).__name__})")
        return dict(decoded)
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy arrays of pairs, as pandas stores an Arrow map
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    raise _RowError(f"{column} must be a dict, a JSON object string or a list of key/value pairs, got {value!r:.80}")


def _difficulty(row: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    model_difficulty = extra.get("model_difficulty")
    if model_difficulty is not None:
        merged.update(as_mapping(model_difficulty, "extra_info.model_difficulty"))
    column = row.get("difficulty")
    if column is not None and not (isinstance(column, float) and math.isnan(column)):
        merged.update(as_mapping(column, "difficulty"))
    return merged


def row_to_problem(row: Mapping[str, Any]) -> Problem:
    """One verl row (as `load_verl_parquet` with ``raw=True`` returns it) as a `Problem`.

    - ``prompt``: the chat messages, as a list of dicts.
    - ``answer``: ``reward_model.ground_truth``, JSON lists decoded (`decode_ground_truth`).
    - ``difficulty``: the ``difficulty`` column merged over ``extra_info.model_difficulty``; null counts dropped.
    - ``meta``: ``data_source``, ``ability``, ``reward_style``, ``index`` (``extra_info.index``, else
      ``extra_info.source_index``), ``extra_info`` (decoded to a dict: the graph rows keep the
      reasoning-gym entry a graph verifier needs), ``original_answer`` (decoded
      ``extra_info.original_ground_truth``, when present), ``answers`` (when the ground truth is a list
      of several answers), and every other column under its own name (``user_text``, ``domain``...).

    Raises:
        ValueError: when the row cannot be read (no prompt, malformed ``extra_info``...).
    """
    if "prompt" not in row or row["prompt"] is None:
        raise _RowError("the row has no 'prompt'")
    reward_model = row.get("reward_model")
    if reward_model is not None and not isinstance(reward_model, Mapping):
        raise _RowError(f"reward_model must be a dict, got {type(reward_model).__name__}")
    answer, answers = decode_ground_truth((reward_model or {}).get("ground_truth"))
    extra = as_mapping(row.get("extra_info"), "extra_info")
    meta: dict[str, Any] = {}
    for column in ("data_source", "ability"):
        if row.get(column) is not None:
            meta[column] = row[column]
    if reward_model and reward_model.get("style") is not None:
        meta["reward_style"] = reward_model["style"]
    index = extra.get("index", extra.get("source_index"))
    if index is not None:
        meta["index"] = index
    meta["extra_info"] = extra
    if answers is not None and len(answers) > 1:
        meta["answers"] = answers
    if "original_ground_truth" in extra:
        meta["original_answer"] = decode_ground_truth(extra["original_ground_truth"])[0]
    for column, value in row.items():
        if column not in _KNOWN_COLUMNS:
            meta[column] = value
    try:
        return Problem(prompt=row["prompt"], answer=answer, difficulty=_difficulty(row, extra), meta=meta)
    except (TypeError, ValueError) as error:
        raise _RowError(str(error)) from None


@overload
def load_verl_parquet(path: str | os.PathLike[str], *, raw: Literal[False] = ...) -> list[Problem]: ...
@overload
def load_verl_parquet(path: str | os.PathLike[str], *, raw: Literal[True]) -> list[dict[str, Any]]: ...


def load_verl_parquet(path: str | os.PathLike[str], *, raw: bool = False) -> list[Problem] | list[dict[str, Any]]:
    """Read a verl-style parquet file (one row per problem) into `Problem` records, or into raw rows.

    With ``raw=False`` each row goes through `row_to_problem` and gets ``meta["source"] = (path, row)``.

    With ``raw=True`` the rows come back as plain Python dicts exactly as stored, which is what verl's
    reward function is called with: ``row["data_source"]``, ``row["reward_model"]["ground_truth"]``
    (still the raw string, e.g. ``'["18"]'``) and ``row["extra_info"]`` (a dict, or a JSON *string* for
    the graph rows) map to verl's ``compute_score(data_source, solution_str, ground_truth, extra_info)``.
    Lists are Python lists (pandas would give numpy arrays); an Arrow map column (``extra_info`` and
    ``difficulty`` of ``scp_512``) comes back as a list of ``(key, value)`` pairs, as pyarrow and
    pandas return it.

    Args:
        path: The parquet file.
        raw: Return the raw rows instead of `Problem` records.

    Returns:
        One `Problem` (or one dict) per row, in file order.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: on a row that cannot be read, naming the file and the row (``file.parquet: row 3: ...``).

    Examples:
        >>> import pyarrow as pa, pyarrow.parquet as pq, tempfile, os
        >>> rows = [{"prompt": [{"role": "user", "content": "1+1?"}],
        ...          "reward_model": {"ground_truth": '["2"]', "style": "rule"},
        ...          "extra_info": {"index": 7}}]
        >>> path = os.path.join(tempfile.mkdtemp(), "toy.parquet")
        >>> pq.write_table(pa.Table.from_pylist(rows), path)
        >>> p = load_verl_parquet(path)[0]
        >>> p.answer, p.meta["index"]
        ('2', 7)
        >>> row = load_verl_parquet(path, raw=True)[0]
        >>> row["reward_model"]
        {'ground_truth': '["2"]', 'style': 'rule'}
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_verl_parquet: no such file: {path}")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise ValueError(f"{path}: cannot be read as parquet ({type(error).__name__}: {error})") from error
    if raw:
        return rows
    problems = []
    for i, row in enumerate(rows):
        try:
            problem = row_to_problem(row)
        except _RowError as error:
            raise ValueError(f"{path}: row {i}: {error}") from None
        problem.meta["source"] = (str(path), i)
        problems.append(problem)
    return problems


def _flat(value: Any) -> Any:
    """A scalar as is; a list or dict (numpy arrays included) as its JSON text, so that every row of a
    column has one Arrow type however the nested metadata varies between rows and tasks."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def verl_row(row: Mapping[str, Any], position: int) -> dict[str, Any]:
    """One row of the paper's files in the form verl 0.9's loader and reward managers expect.

    - ``reward_model.ground_truth``: the label as plain text (a JSON list such as ``'["18"]'`` gives its first
      entry, `decode_ground_truth`); several answers are kept as a JSON list in ``extra_info["answers"]``.
    - ``extra_info``: a struct (verl calls ``extra_info.get``), decoded from a JSON string or an Arrow map
      (`as_mapping`), with an ``index`` (``source_index``, else the row's position, where the file has none);
      nested values become JSON text, so one Arrow type holds every row; ``original_ground_truth`` decoded.
    - ``difficulty``: an Arrow map becomes a struct. Other columns are kept.

    Args:
        row: One raw row of a paper file (as `load_verl_parquet` gives with ``raw=True``); not modified.
        position: The row's index in its file, the ``extra_info["index"]`` where the row has neither
            ``index`` nor ``source_index``.

    Returns:
        A new dict: the row with the columns above rewritten.

    Examples:
        >>> r = verl_row({"prompt": [{"role": "user", "content": "1+1?"}], "data_source": "graph",
        ...               "reward_model": {"ground_truth": '["2"]', "style": "rule"},
        ...               "extra_info": '{"source_index": 5, "grid": [[0, 1]]}'}, 0)
        >>> r["reward_model"]["ground_truth"], r["extra_info"]
        ('2', {'source_index': 5, 'grid': '[[0, 1]]', 'index': 5})
    """
    out = dict(row)
    reward_model = dict(row.get("reward_model") or {})
    answer, answers = decode_ground_truth(reward_model.get("ground_truth"))
    reward_model["ground_truth"] = answer
    out["reward_model"] = reward_model
    extra = {str(k): _flat(v) for k, v in as_mapping(row.get("extra_info"), "extra_info").items()}
    if "original_ground_truth" in extra:
        extra["original_ground_truth"] = decode_ground_truth(extra["original_ground_truth"])[0]
    if answers is not None and len(answers) > 1:
        extra["answers"] = json.dumps(answers, ensure_ascii=False)
    if extra.get("index") is None:
        extra["index"] = extra.get("source_index", position)
    out["extra_info"] = extra
    if "difficulty" in row and row["difficulty"] is not None:
        out["difficulty"] = as_mapping(row["difficulty"], "difficulty") or None
    return out


def write_verl_parquet(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Rewrite one of the paper's parquet files so that verl 0.9 reads it (`verl_row` on every row).

    Args:
        source: The paper's file.
        target: Where to write the verl file (its folder must exist).

    Returns:
        The number of rows written.

    Raises:
        FileNotFoundError: when ``source`` does not exist.
        ValueError: on a row that cannot be read, naming the file and the row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = load_verl_parquet(source, raw=True)
    converted = []
    for i, row in enumerate(rows):
        try:
            converted.append(verl_row(row, i))
        except _RowError as error:
            raise ValueError(f"{source}: row {i}: {error}") from None
    try:
        table = pa.Table.from_pylist(converted)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"{source}: the rows do not share one Arrow schema ({error})") from None
    pq.write_table(table, target)
    return len(converted)
