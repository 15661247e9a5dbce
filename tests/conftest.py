"""Suite-wide test settings."""

from hypothesis import HealthCheck, settings

# CI runs on 2 shared cores: a wall-clock deadline per example would make property tests flaky under
# load without testing anything about the code. Example counts stay hypothesis's defaults.
settings.register_profile("weakreward", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("weakreward")
