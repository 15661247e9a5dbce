"""The verl and OpenRLHF snippets of docs/guides/other-trainers.md run as written (the TRL snippet is the
trainer test in test_trl.py, on a tiny model instead of the embedded one), and its verl commands load
through verl's own config (its OpenRLHF flags go through OpenRLHF's parser in test_openrlhf_real.py)."""

from __future__ import annotations

import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "other-trainers.md"
FIXTURES = ROOT / "tests" / "fixtures"


def snippets() -> dict[str, str]:
    """The guide's ``python title="<file>"`` blocks, by file name."""
    return dict(re.findall(r'```python title="([^"]+)"\n(.*?)```', GUIDE.read_text(encoding="utf-8"), re.S))


def commands() -> dict[str, list[str]]:
    """The guide's ``bash title="<file>"`` blocks, as the words of their one command, by file name."""
    blocks = re.findall(r'```bash title="([^"]+)"\n(.*?)```', GUIDE.read_text(encoding="utf-8"), re.S)
    return {name: shlex.split(code.replace("\\\n", " ")) for name, code in blocks}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name, code in snippets().items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("weak_rewards", "reward_func"):
        sys.modules.pop(module, None)


def test_the_guide_names_its_snippets() -> None:
    assert set(snippets()) >= {
        "train_trl.py",
        "weak_rewards.py",
        "check_weak_rewards.py",
        "reward_func.py",
        "check_reward_func.py",
    }
    assert set(commands()) == {"prepare_verl.sh", "train_verl.sh", "train_verl_vote.sh", "train_openrlhf.sh"}


def test_the_prepare_command_writes_a_verl_file(workdir: Path) -> None:
    from weakreward.cli import main
    from weakreward.data.parquet import load_verl_parquet

    words = commands()["prepare_verl.sh"]
    assert words[:3] == ["weakreward", "data", "to-verl"]
    shutil.copy(FIXTURES / "verl_rows_math.parquet", workdir / words[3])
    assert main(words[1:]) == 0
    rows = load_verl_parquet(workdir / words[4], raw=True)
    assert [r["reward_model"]["ground_truth"] for r in rows][0] == "18"  # '["18"]' decoded


@pytest.mark.parametrize(
    "command, name, manager",
    [
        ("train_verl.sh", "compute_score", "NaiveRewardManager"),
        ("train_verl_vote.sh", "compute_score_vote", "GroupRewardManager"),
    ],
)
def test_verl_overrides_of_the_guide_make_verl_pick_our_reward(
    workdir: Path, command: str, name: str, manager: str, verl_config
) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    from weakreward.adapters.verl import VerlReward

    words = commands()[command]
    assert words[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    config = verl_config(words[3:])
    fn = get_custom_reward_fn(config)
    assert fn is not None and isinstance(fn.args[0], VerlReward)  # not verl's default_compute_score
    assert fn.args[0].reward.name == runpy.run_path(str(workdir / "weak_rewards.py"))[name].reward.name
    assert resolve_reward_manager_cls(config).__name__ == manager


def test_verl_snippets_run_on_the_paper_rows(workdir: Path, capsys) -> None:
    shutil.copy(FIXTURES / "verl_rows_math.parquet", workdir / "sky_math_8.parquet")
    runpy.run_path(str(workdir / "check_weak_rewards.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '["18"]'
    assert "'score': " in lines[1] and "'math_verify/reason': 'match'" in lines[1]
    assert lines[2] == "[1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0] 18"  # five of eight voted 18


def test_openrlhf_snippets_run(workdir: Path, capsys) -> None:
    runpy.run_path(str(workdir / "check_reward_func.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "tensor([" in out and "/scored'" in out and "/flipped'" in out


@pytest.mark.slow
def test_trl_snippet_trains_with_a_tiny_model_in_place_of_the_hub_model(workdir: Path) -> None:
    pytest.importorskip("trl")
    code = snippets()["train_trl.py"]
    hub_model = 'model = "HuggingFaceTB/SmolLM2-135M-Instruct"  # any causal LM id or folder\n'
    assert hub_model in code and "    model=model,\n" in code
    code = code.replace(
        hub_model,
        "from weakreward.models import char_tokenizer, tiny_llama\n"
        "tokenizer = char_tokenizer()\nmodel = tiny_llama(tokenizer)\n",
    ).replace("    model=model,\n", "    model=model,\n    processing_class=tokenizer,\n")
    # keep the test fast: short completions, one verifier process each
    assert "max_completion_length=64" in code and "MathVerifier()" in code and "MajorityVote()" in code
    code = code.replace("max_completion_length=64", "max_completion_length=8")
    code = code.replace("MathVerifier()", "MathVerifier(workers=1)").replace(
        "MajorityVote()", "MajorityVote(MathVerifier(workers=1))"
    )
    namespace: dict = {}
    exec(compile(code, "train_trl.py", "exec"), namespace)  # noqa: S102 - the guide's own code
    assert namespace["trainer"].state.global_step == 2
    history = namespace["trainer"].state.log_history
    assert any("rewards/majority_vote/mean" in h for h in history)
