"""Prices per image by size and quality, from the file or LiteLLM's price-map variants."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from costrouter.config.groups import Deployment
from costrouter.config.image_key import variant_key
from costrouter.pricing.image_prices import price_map_variants, variant_rate
from costrouter.pricing.prices import deployment_price

RATES = {"standard/1024x1024": 0.04, "hd/1024x1024": 0.08, "standard/1792x1024": 0.08, "hd/1792x1024": 0.12}


def test_variant_keys_are_normalised() -> None:
    assert variant_key("hd/1024-x-1792") == "hd/1024x1792"
    assert variant_key("512x512") == "512x512"
    with pytest.raises(ValueError, match="must be 'WxH' or 'quality/WxH'"):
        variant_key("large")


def test_a_variant_is_priced_exactly_and_an_unknown_one_at_the_dearest_that_may_apply() -> None:
    assert variant_rate(RATES, "hd", (1024, 1024)) == 0.08
    assert variant_rate(RATES, None, (1024, 1024)) == 0.08  # no quality: the dearest of the size
    assert variant_rate(RATES, "standard", None) == 0.08  # no size: the dearest of the quality
    assert variant_rate(RATES, None, None) == 0.12


def test_the_price_map_variants_of_a_model() -> None:
    variants = price_map_variants("azure/dall-e-3")
    assert variants["hd/1024x1024"] == pytest.approx(0.088, rel=1e-3)  # per pixel x 1024 x 1024
    assert price_map_variants("openai/gpt-image-1")["low/1024x1024"] == pytest.approx(0.011)


def test_a_deployment_shows_its_image_prices_as_dimensions() -> None:
    price = deployment_price(Deployment(model="openai/img-x", image_prices=RATES))
    assert price is not None
    rows = {key: (value, source) for key, value, source in price.dimensions()}
    assert rows["image hd/1792x1024"] == (0.12, "deployment")


def test_a_bad_image_price_is_refused_with_its_key() -> None:
    with pytest.raises(ValidationError, match=r"hd/1024x1024: must be >= 0"):
        Deployment(model="openai/img-x", image_prices={"hd/1024x1024": -1})
    with pytest.raises(ValidationError, match="must be 'WxH' or 'quality/WxH'"):
        Deployment(model="openai/img-x", image_prices={"huge": 0.1})
