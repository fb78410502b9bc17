"""The module-level route_completion builds its router from settings on first use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import litellm
import pytest
import yaml

import costrouter
from costrouter.routing import default as _default
from costrouter.testing import ProviderDouble
from tests.routing import router_config


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderDouble]:
    with ProviderDouble() as provider:
        path = tmp_path / "router.yaml"
        path.write_text(yaml.safe_dump(router_config(provider.base_url)))
        monkeypatch.setenv("COSTROUTER_CONFIG", str(path))
        monkeypatch.delenv("COSTROUTER_BUDGETS", raising=False)
        monkeypatch.setattr(_default, "_router", [])
        yield provider


def test_module_level_route_completion_uses_the_settings_file(configured: ProviderDouble) -> None:
    response = costrouter.route_completion("fast", [{"role": "user", "content": "hi"}], max_tokens=5)
    assert isinstance(response, litellm.ModelResponse)
    assert costrouter.default_router() is costrouter.default_router()
    assert configured.request_count("fast-model") == 1


async def test_module_level_async(configured: ProviderDouble) -> None:
    response = await costrouter.aroute_completion("fast", [{"role": "user", "content": "hi"}], max_tokens=5)
    assert isinstance(response, litellm.ModelResponse)


async def test_module_level_embedding_and_response(configured: ProviderDouble) -> None:
    assert isinstance(costrouter.route_embedding("fast", input="a b"), litellm.EmbeddingResponse)
    assert isinstance(await costrouter.aroute_embedding("fast", input=["a b"]), litellm.EmbeddingResponse)
    assert costrouter.route_response("fast", input="hi", max_output_tokens=5).status == "completed"
    assert (await costrouter.aroute_response("fast", input="hi", max_output_tokens=5)).status == "completed"
    assert configured.request_count("fast-model") == 4


async def test_module_level_text_completion_and_messages(configured: ProviderDouble) -> None:
    text = costrouter.route_text_completion("fast", prompt="once upon", max_tokens=5)
    assert isinstance(text, litellm.TextCompletionResponse)
    assert isinstance(await costrouter.aroute_text_completion("fast", prompt="once upon", max_tokens=5), type(text))
    message = [{"role": "user", "content": "hi"}]
    assert costrouter.route_messages("fast", messages=message, max_tokens=5)["type"] == "message"
    assert (await costrouter.aroute_messages("fast", messages=message, max_tokens=5))["type"] == "message"
    assert configured.request_count("fast-model") == 4
