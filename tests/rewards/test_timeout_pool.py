"""TimeoutPool: hard per-item deadlines, order, deduplication and worker replacement, with a toy engine."""

from __future__ import annotations

import time

import pytest

from weakreward.rewards.timeout_pool import TimeoutPool

ENGINE = """
import os, time

class Engine:
    def run(self, context, payload, options):
        if payload == "hang":
            while True:
                time.sleep(1)
        if payload == "crash":
            os._exit(3)
        if payload == "raise":
            raise KeyError(payload)
        return "ok", f"{context}:{payload}:{os.getpid()}"
"""


@pytest.fixture
def engine_file(tmp_path):
    path = tmp_path / "engine.py"
    path.write_text(ENGINE)
    return str(path)


def test_results_come_back_in_order_and_a_hung_item_times_out(engine_file: str) -> None:
    pool = TimeoutPool(engine_file, workers=2, timeout=1.0, memory_mb=0, label="test")
    try:
        pool.start()
        start = time.perf_counter()
        out = pool.run([("a", "1"), ("b", "hang"), ("a", "2"), ("b", "3")], {}, chunk_size=8)
        elapsed = time.perf_counter() - start
        assert [r[0] for r in out] == ["ok", "timeout", "ok", "ok"]
        assert [r[1].rsplit(":", 1)[0] for r in out if r[0] == "ok"] == ["a:1", "a:2", "b:3"]
        assert out[1] == ("timeout", None)
        assert elapsed < 1.0 + 10  # one deadline plus a replacement worker's start
    finally:
        pool.close()


def test_a_crashing_item_and_a_raising_item_get_reasons(engine_file: str) -> None:
    pool = TimeoutPool(engine_file, workers=1, timeout=10.0, memory_mb=0, label="test")
    try:
        out = pool.run([("c", "crash"), ("c", "raise"), ("c", "4")], {}, chunk_size=8)
        assert out[0] == ("error: worker died", None)
        assert out[1] == ("error: KeyError", None)
        assert out[2][0] == "ok"
    finally:
        pool.close()


def test_identical_jobs_run_once(engine_file: str) -> None:
    pool = TimeoutPool(engine_file, workers=1, timeout=10.0, memory_mb=0, label="test")
    try:
        out = pool.run([("d", "5")] * 4 + [("d", "6")], {}, chunk_size=8)
        assert out[:4] == [out[0]] * 4 and out[4] != out[0]
    finally:
        pool.close()


def test_a_missing_engine_file_is_a_clear_error(tmp_path) -> None:
    pool = TimeoutPool(str(tmp_path / "nowhere.py"), workers=1, timeout=5.0, memory_mb=0, label="test")
    try:
        with pytest.raises(RuntimeError, match="test: a worker could not start"):
            pool.run([("x", "1")], {}, chunk_size=8)
    finally:
        pool.close()
