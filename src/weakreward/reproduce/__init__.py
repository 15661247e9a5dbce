"""The paper's findings at small scale: ``weakreward reproduce {scarce,noise,proxy}``.

Each finding of arXiv 2604.18574 is one command that trains the embedded SmolLM2-135M-Instruct with GRPO
on ``a ± b`` arithmetic (operands 1..10; the starting model gets about a third right at temperature 1:
0.34 of 40 held-out problems, measured) on a 2-core CPU, evaluates on 32 held-out problems never trained
on (from step 0), probes the starting and the trained models, and writes ``report.md``, PNG figures and a
verdict into its run folder; ``weakreward reproduce report`` stitches the three into one
``docs/reproduction.md``-ready page. A command killed at any point continues where it stopped when rerun.

The modules use the library's public API only (``weakreward``, ``weakreward.data``,
``weakreward.dynamics``, ``weakreward.probes.*``, and ``weakreward.models`` to load the model; a test
checks the imports), so each is also an example of a study written with weakreward:

- `weakreward.reproduce.scarce`: N = 4, 16, 64 training problems, two seeds; t_sat, Δ_sat, Δ*_post, G_sat;
- `weakreward.reproduce.noise`: γ = 0, 0.3, 0.5, 0.7 wrong labels mined from the model's own samples;
- `weakreward.reproduce.proxy`: true verifier, majority vote, self-certainty, random reward;
- `weakreward.reproduce.probing`: faithfulness and diversity probes;
- `weakreward.reproduce.runner`: the sizes, the task, one resumable run, progress with an ETA;
- `weakreward.reproduce.report`: tables, figures and the verdict rule.

**The budget** (at most 2 hours for the three commands on two idle cores). One short real run
(`bench/reproduce_timing.py`: 3 steps of the full sizes, on a machine shared with four other jobs, load
average 5-12, so every absolute time is inflated several-fold) measured, in CPU seconds: a training step
(4 prompts × 6 samples, 12 new tokens) 86 s, one held-out evaluation (40 × 2 completions) 198 s, the
probes of one model 145 s, the model load 30 s. Absolute times under that load say little, their ratios
more: evaluation = 2.3 steps per 80 completions, probes = 1.7 steps. The absolute scale is the demo's
documented step on two idle cores, 10 s for the same batch (`docs/guides/training.md`), which gives
(`weakreward.reproduce.runner.MEASURED`): step 10 s, evaluation of 32 × 2 completions 18.4 s, probes
17 s, model load 35 s, mining 64 × 8 samples 147 s. With 40 steps and an evaluation every 8 steps
(steps 0, 8, ..., 40: 6 evaluations), one run is 40 × 10 + 6 × 18.4 + 17 = 527.4 s (8.8 min), and:

- ``scarce``: 6 runs + starting-model probes + load = 6 × 527.4 + 17 + 35 = 3216 s, about 54 min;
- ``noise``: 3 new runs (γ = 0 is the scarce N = 64 seed-0 run: whichever command comes first trains it,
  the others copy it) + mining = 3 × 527.4 + 52 + 147 = 1781 s, about 30 min;
- ``proxy``: 3 new runs (the true verifier's run is copied) = 3 × 527.4 + 52 = 1634 s, about 27 min;

6631 s, about 111 minutes in all; each report repeats its line of this arithmetic and the wall time it recorded.
On a loaded machine the commands take correspondingly longer (their ETA says how much).
"""
