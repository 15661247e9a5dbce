"""Probes of what a policy has learned (arXiv 2604.18574): `weakreward.probes.faithfulness` (do the
steps support the answer? the paper's judge rubric plus judge-free math checks, with
`weakreward.probes.arithmetic` re-checking ``a op b = c`` claims) and `weakreward.probes.diversity`
(strategy-cluster diversity, distinct-n, answer entropy, unbiased pass@k). Import the submodules."""
