"""The adapters are registered under the seed's channel names; the simulate CLI serves."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smsgate.providers.registry import adapter_for
from smsgate.providers.simulators.base import SimulatorConfig
from smsgate.providers.simulators.cli import SimulatedProvider, app_factory, simulate_cli


@pytest.mark.parametrize(
    ("channel_no", "batch"),
    [("AliYun", 1000), ("Tencent", 200), ("Qiniu", 100), ("Huawei", 500), ("Twilio", 100)],
)
def test_registered_under_seed_names(channel_no: str, batch: int) -> None:
    adapter = adapter_for(channel_no)
    assert adapter is not None
    assert adapter.channel_no == channel_no
    assert adapter.max_batch_size == batch


@pytest.mark.parametrize("provider", list(SimulatedProvider))
def test_every_provider_has_a_simulator_app(provider: SimulatedProvider) -> None:
    app = app_factory(provider)(SimulatorConfig())
    paths = {route.resource.canonical for route in app.router.routes() if route.resource}
    assert "/_sim/requests" in paths
    assert len(paths) > 2  # plus the provider's own API


def test_cli_lists_one_command_per_provider() -> None:
    result = CliRunner().invoke(simulate_cli, ["--help"])
    assert result.exit_code == 0
    for provider in SimulatedProvider:
        assert provider.value in result.output


def test_cli_rejects_bad_failure_rate() -> None:
    result = CliRunner().invoke(simulate_cli, ["aliyun", "--failure-rate", "2"])
    assert result.exit_code != 0
