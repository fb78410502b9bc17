"""How far real tokenizers count above tiktoken's cl100k_base, on a few kinds of text.

Only what LiteLLM ships offline: the tiktoken encodings in its bundled cache
(cl100k_base, o200k_base, p50k_base) and its bundled Anthropic tokenizer JSON, read
with the ``tokenizers`` package. Nothing is downloaded. Run:

    LITELLM_LOCAL_MODEL_COST_MAP=True uv run --locked python benchmarks/tokenizer_gap.py

Prints a Markdown table: tokens per tokenizer and the ratio to cl100k_base per kind of text;
then what costrouter's prompt count costs per call, next to LiteLLM's token_counter.
"""

from __future__ import annotations

import json
from importlib.resources import files

import litellm
import litellm.litellm_core_utils.default_encoding
import tiktoken
from tokenizers import Tokenizer

PROSE = (
    "The committee met on a grey Tuesday morning to review the budget for the coming year. "
    "Several members argued that the maintenance of the old bridge had been postponed too often, "
    "while others insisted that the library's opening hours mattered more to the town's residents. "
    "After a long discussion, they agreed to commission an independent survey before deciding, "
    "and to publish the results, together with the minutes, on the council's website within a month."
)
CODE = '''def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; the input need not be sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class LRUCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        value = self._items.pop(key, None)
        if value is not None:
            self._items[key] = value
        return value
'''
JSON_TEXT = json.dumps(
    {
        "orders": [
            {
                "id": f"ord_{i:05d}",
                "customer": {"name": name, "email": f"{name.lower()}@example.com"},
                "items": [{"sku": f"SKU-{i * 7 % 997}", "qty": i % 4 + 1, "price": round(9.99 + i * 1.37, 2)}],
                "shipped": i % 2 == 0,
            }
            for i, name in enumerate(["Alice", "Bob", "Chandra", "Dmitri", "Eun-ji", "Fatima"])
        ]
    },
    indent=2,
)
CHINESE = (
    "委员会在一个阴沉的星期二早上开会，审议来年的预算。几位委员认为，旧桥的维修已经推迟太多次了，"
    "而另一些委员则坚持认为，图书馆的开放时间对镇上的居民更重要。经过长时间的讨论，他们同意在作出决定之前"
    "委托进行一项独立调查，并在一个月内将结果连同会议记录一起公布在议会的网站上。"
)
RUSSIAN = (
    "Комитет собрался в пасмурное утро вторника, чтобы рассмотреть бюджет на следующий год. "
    "Несколько членов утверждали, что ремонт старого моста откладывали слишком часто, а другие настаивали, "
    "что часы работы библиотеки важнее для жителей города. После долгого обсуждения они согласились "
    "заказать независимое исследование и опубликовать его результаты на сайте совета в течение месяца."
)
ARABIC = (
    "اجتمعت اللجنة صباح يوم ثلاثاء غائم لمراجعة ميزانية العام المقبل. وقال عدد من الأعضاء إن صيانة الجسر القديم "
    "قد تأجلت مرات كثيرة، بينما أصر آخرون على أن ساعات عمل المكتبة أهم لسكان البلدة. وبعد نقاش طويل، اتفقوا على "
    "تكليف جهة مستقلة بإجراء دراسة قبل اتخاذ القرار، ونشر النتائج على موقع المجلس خلال شهر."
)
HINDI = (
    "समिति ने अगले वर्ष के बजट की समीक्षा करने के लिए एक धूसर मंगलवार की सुबह बैठक की। कई सदस्यों ने कहा कि पुराने पुल "
    "की मरम्मत बहुत बार टाली गई है, जबकि अन्य ने ज़ोर दिया कि पुस्तकालय के खुलने का समय नगर के निवासियों के लिए अधिक महत्वपूर्ण है।"
)
NUMBERS = " ".join(f"{(i * 7919) % 100003}.{i % 97:02d}" for i in range(120))
EMOJI = "Great job team 🎉🚀 — shipped on time ✅, next: perf 📈 and docs 📚. Thanks 🙏🙏 " * 3
TEXTS = {
    "English prose": PROSE,
    "Python code": CODE,
    "JSON": JSON_TEXT,
    "Chinese": CHINESE,
    "Russian": RUSSIAN,
    "Arabic": ARABIC,
    "Hindi": HINDI,
    "numbers": NUMBERS,
    "emoji + English": EMOJI,
}


def main() -> None:
    """Count every text with every shipped tokenizer and print the table."""
    encodings = {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base", "p50k_base")}
    path = files("litellm.litellm_core_utils.tokenizers").joinpath("anthropic_tokenizer.json")
    claude = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    counters = {name: (lambda text, e=e: len(e.encode(text, disallowed_special=()))) for name, e in encodings.items()}
    counters["claude (bundled)"] = lambda text: len(claude.encode(text).ids)
    names = list(counters)
    print("| text | chars | " + " | ".join(names) + " | max ratio to cl100k |")
    print("|---|---:|" + "---:|" * len(names) + "---:|")
    worst = 0.0
    for kind, text in TEXTS.items():
        counts = {name: count(text) for name, count in counters.items()}
        base = counts["cl100k_base"]
        ratios = {name: counts[name] / base for name in names}
        worst = max(worst, *ratios.values())
        cells = [f"{counts[n]} ({ratios[n]:.2f})" if n != "cl100k_base" else str(base) for n in names]
        print(f"| {kind} | {len(text)} | " + " | ".join(cells) + f" | {max(ratios.values()):.2f} |")
    print(f"\nlargest ratio to cl100k_base over all texts and tokenizers: {worst:.2f}")


def counting_cost() -> None:
    """Microseconds per call: costrouter's bound count against LiteLLM's token_counter (which it replaced)."""
    import timeit  # noqa: PLC0415

    from costrouter.pricing.tokens import prompt_token_count  # noqa: PLC0415

    cases = {
        "one short message": [{"role": "user", "content": "summarise the quarterly report in three bullets"}],
        "4 turns, 2 kB": [
            {"role": "system", "content": PROSE},
            {"role": "user", "content": CODE},
            {"role": "assistant", "content": PROSE},
            {"role": "user", "content": "and now in French?"},
        ],
    }
    print("\n| messages | costrouter prompt_token_count (µs) | litellm.token_counter (µs) |")
    print("|---|---:|---:|")
    for name, messages in cases.items():
        ours = min(timeit.repeat(lambda m=messages: prompt_token_count(m), number=200, repeat=5)) / 200 * 1e6
        theirs = min(timeit.repeat(lambda m=messages: litellm.token_counter(messages=m), number=200, repeat=5)) / 200
        print(f"| {name} | {ours:.0f} | {theirs * 1e6:.0f} |")


if __name__ == "__main__":
    main()
    counting_cost()
