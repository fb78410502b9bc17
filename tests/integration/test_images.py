"""Image generation and edits through the router: priced per image by size and quality."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import litellm
import pytest
from packaging.version import Version

from costrouter import BudgetExceededError, CostRouter
from costrouter.otel import semconv as sc
from costrouter.routing.needs import litellm_version
from costrouter.testing import Fail, ProviderDouble, Reply, TelemetryCapture
from tests.calltypes import (
    IMAGE_BACKUP_PRICE,
    IMAGE_PRICES,
    budgeted_router,
    call_attributes,
    open_router,
    store_config,
)

PROMPT = "a lighthouse in a storm"


@pytest.fixture
def router(provider: ProviderDouble, capture: TelemetryCapture) -> Iterator[CostRouter]:
    yield from open_router(provider, capture)


def test_an_image_generation_is_a_span_with_its_images_and_cost(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    response = router.route_image("images", prompt=PROMPT, n=2, size="1024x1024", quality="hd", session_id="s-img")

    assert isinstance(response, litellm.ImageResponse)
    assert len(response.data) == 2
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.image_generation/images"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "image_generation"
    assert attributes[sc.ROUTER_USAGE_IMAGES] == 2
    assert attributes[sc.ROUTER_USAGE_PIXELS] == 2 * 1024 * 1024
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(2 * IMAGE_PRICES["hd/1024x1024"])
    assert attributes[f"{sc.ROUTER_COST_PREFIX}images"] == pytest.approx(2 * IMAGE_PRICES["hd/1024x1024"])
    assert attributes[sc.LLM_COST_COMPLETION] == attributes[sc.LLM_COST_TOTAL]  # images are output
    assert provider.requests[0].body["quality"] == "hd"


ROUTER_RETRIES_SYNC_IMAGES_SINCE = Version("1.109.0")
"""Before it, LiteLLM's sync image call retries inside the OpenAI SDK, below LiteLLM's callbacks."""


def test_a_sync_image_generation_retried_after_a_429_is_charged_once(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("img-model", Fail(429, retry_after=0.01), Reply())

    router.route_image("images", prompt=PROMPT, size="1024x1024", quality="standard")

    attributes = call_attributes(capture)
    version = litellm_version()
    assert version is not None
    retry_counts = [r.headers.get("x-stainless-retry-count") for r in provider.requests]
    if version < ROUTER_RETRIES_SYNC_IMAGES_SINCE:  # the SDK's retry: one attempt on the span
        assert retry_counts == ["0", "1"]
        assert (attributes[sc.ROUTER_ATTEMPTS], attributes[sc.ROUTER_RETRIES]) == (1, 0)
    else:  # LiteLLM's Router retries it, as the async call: each attempt on the span
        assert retry_counts == ["0", "0"]
        assert (attributes[sc.ROUTER_ATTEMPTS], attributes[sc.ROUTER_RETRIES]) == (2, 1)
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(IMAGE_PRICES["standard/1024x1024"])


async def test_an_image_generation_is_retried_after_a_429(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.script("img-model", Fail(429, retry_after=0.01), Reply())

    await router.aroute_image("images", prompt=PROMPT, size="1024x1024", quality="standard")

    assert provider.request_count("img-model") == 2
    assert call_attributes(capture)[sc.LLM_USAGE_COST_USD] == pytest.approx(IMAGE_PRICES["standard/1024x1024"])


async def test_an_image_generation_falls_back_to_another_group(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("img-model", Fail(500))

    await router.aroute_image("images", prompt=PROMPT, n=2, size="1024x1024")

    attributes = call_attributes(capture)
    assert attributes[sc.ROUTER_SERVED_GROUP] == "images-backup"
    assert attributes[sc.ROUTER_FALLBACKS] == 1
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(2 * IMAGE_BACKUP_PRICE)


async def test_a_budget_refuses_images_before_the_provider(provider: ProviderDouble, capture: TelemetryCapture) -> None:
    router = budgeted_router(provider, capture, 0.1, {"backend": "memory"})

    with pytest.raises(BudgetExceededError):  # 4 x 0.04 USD over a 0.1 USD budget
        await router.aroute_image("images", prompt=PROMPT, n=4, size="1024x1024", quality="standard", session_id="s")

    assert provider.request_count() == 0
    router.shutdown()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_images_settle_to_the_unit(
    provider: ProviderDouble, capture: TelemetryCapture, backend: str, request: pytest.FixtureRequest
) -> None:
    router = budgeted_router(provider, capture, 1.0, store_config(backend, request))

    await router.aroute_image("images", prompt=PROMPT, n=3, size="1792x1024", quality="standard", session_id="s-img")

    assert router.budgets is not None
    (status,) = router.budgets.status("session", "s-img")
    assert status.spent_units == 240_000_000  # 3 x 0.08 USD (standard, 1792x1024) in nano-dollars: hand-computed
    assert status.held_units == 0
    router.shutdown()


async def test_an_image_without_size_or_quality_is_held_at_the_dearest_variant(
    provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    router = budgeted_router(provider, capture, 1.0, {"backend": "memory"})

    await router.aroute_image("images", prompt=PROMPT, session_id="s-auto")

    attributes = call_attributes(capture)
    assert attributes[sc.BUDGET_ESTIMATE_USD] == pytest.approx(max(IMAGE_PRICES.values()))
    assert attributes[sc.BUDGET_SETTLED_USD] == pytest.approx(IMAGE_PRICES["standard/1024x1024"])  # what it made
    router.shutdown()


async def test_an_image_edit_is_priced_like_a_generation(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    response = await router.aroute_image_edit(
        "images", image=io.BytesIO(b"\x89PNG\r\n\x1a\n"), prompt="add a ship", size="1024x1024", quality="hd"
    )

    assert isinstance(response, litellm.ImageResponse)
    (span,) = capture.call_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "router.image_edit/images"
    assert attributes[sc.GEN_AI_OPERATION_NAME] == "image_edit"
    assert attributes[sc.ROUTER_FALLBACKS] == 0
    assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(IMAGE_PRICES["hd/1024x1024"])
    assert provider.requests[0].body["image_files"] == 1


async def test_concurrent_image_generations_keep_their_own_spans(
    router: CostRouter, provider: ProviderDouble, capture: TelemetryCapture
) -> None:
    provider.set_default("img-model", Reply(delay=0.05))
    sizes = range(1, 6)

    await asyncio.gather(
        *(router.aroute_image("images", prompt=PROMPT, n=n, size="1024x1024", session_id=f"s{n}") for n in sizes)
    )

    spans = capture.call_spans()
    assert len(spans) == len(sizes)
    for span in spans:
        attributes = dict(span.attributes or {})
        n = int(str(attributes[sc.SESSION_ID])[1:])
        assert attributes[sc.ROUTER_USAGE_IMAGES] == n
        assert attributes[sc.LLM_USAGE_COST_USD] == pytest.approx(n * IMAGE_PRICES["standard/1024x1024"])


async def test_an_image_on_a_speech_group_or_of_a_bad_size_is_a_clear_error(
    router: CostRouter, provider: ProviderDouble
) -> None:
    with pytest.raises(ValueError, match=r"not a image_generation call \(needs mode image_generation\)"):
        await router.aroute_image("tts", prompt=PROMPT)
    with pytest.raises(ValueError, match="size must be 'WxH'"):
        await router.aroute_image("images", prompt=PROMPT, size="large")
    assert provider.request_count() == 0
