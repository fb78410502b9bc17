"""The custom provider ``custom_provider.yaml`` names: answers every call with a fixed text."""

from __future__ import annotations

from typing import Any

import litellm
from litellm import CustomLLM


class CorpusLLM(CustomLLM):
    """A provider served in-process: LiteLLM routes ``corpus-llm/...`` models here."""

    def completion(self, *args: Any, **kwargs: Any) -> litellm.ModelResponse:
        return litellm.completion(  # type: ignore[no-any-return]
            model="gpt-4o-mini", messages=kwargs["messages"], mock_response="from the house model"
        )

    async def acompletion(self, *args: Any, **kwargs: Any) -> litellm.ModelResponse:
        return await litellm.acompletion(  # type: ignore[no-any-return]
            model="gpt-4o-mini", messages=kwargs["messages"], mock_response="from the house model"
        )


handler = CorpusLLM()
