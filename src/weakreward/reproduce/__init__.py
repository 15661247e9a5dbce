"""The paper's findings at small scale: ``weakreward reproduce {scarce,noise,proxy}``.

Each finding of arXiv 2604.18574 is one command that trains the embedded SmolLM2-135M-Instruct with GRPO
on ``a ± b`` arithmetic (operands 1..10, where it starts at about a third right at temperature 1) on
a 2-core CPU, evaluates on 40 held-out problems never trained on (from step 0), probes the starting and
the trained models, and writes ``report.md``, PNG figures and a verdict into its run folder;
``weakreward reproduce report`` stitches the three into one ``docs/reproduction.md``-ready page.

The modules use the library's public API only (``weakreward``, ``weakreward.data``,
``weakreward.dynamics``, ``weakreward.probes.*``, and ``weakreward.models`` to load the model), so each
is also an example of a study written with weakreward:

- `weakreward.reproduce.scarce`: N = 4, 16, 64 training problems, two seeds; t_sat, Δ_sat, Δ*_post, G_sat;
- `weakreward.reproduce.noise`: γ = 0, 0.3, 0.5, 0.7 wrong labels mined from the model's own samples;
- `weakreward.reproduce.proxy`: true verifier, majority vote, self-certainty, random reward;
- `weakreward.reproduce.probing`: faithfulness and diversity probes;
- `weakreward.reproduce.runner`: the sizes, the task, one resumable run, progress with an ETA;
- `weakreward.reproduce.report`: tables, figures and the verdict rule.

**Budget** (`weakreward.reproduce.runner.FULL`, times from `weakreward.reproduce.runner.MEASURED`):
see the report of each command for the arithmetic with the measured numbers.
"""
