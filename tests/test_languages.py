"""Two languages: answers come in the question's language (the real test model at temperature 0), and
every label of the page has its Russian."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing, contextmanager

import gradio as gr
from gradio.context import LocalContext

from chmocoder.chat import ChatService, TurnOptions
from chmocoder.prompts import LANGUAGE_RULES, question_language
from chmocoder.ui import chat, composer, practice, render
from chmocoder.ui.language import I18N, STORAGE_KEY, TEXTS, key, page_language, span

CYRILLIC = re.compile(r"[а-яё]", re.I)


def answer(service: ChatService, question: str) -> str:
    chat_id = service.new_chat("explain", "beginner")
    with closing(service.send(chat_id, question, TurnOptions(verify=False, max_new_tokens=48, temperature=0.0))) as r:
        return list(r)[-1].text


def test_a_question_in_russian_is_answered_in_russian_and_one_in_english_in_english(service: ChatService) -> None:
    russian = answer(service, "Что такое список в Python и как добавить в него элемент?")
    assert len(CYRILLIC.findall(russian)) > 20, russian
    english = answer(service, "What is a list in Python and how do I add an item to it?")
    assert not CYRILLIC.search(english), english


def test_the_language_is_the_prose_s_not_the_code_s(service: ChatService) -> None:
    code = "```python\ndef total(items):\n    return sum(item.price for item in items)\n```"
    assert question_language(f"Почему эта функция падает?\n{code}") == "ru"
    assert question_language(f"Why does this fail?\n{code}\n`ошибка`") == "en"
    chat_id = service.new_chat("debug", "beginner")
    system = service.prepare(chat_id, f"Почему эта функция падает?\n{code}", TurnOptions()).system
    assert LANGUAGE_RULES["ru"] in system
    assert LANGUAGE_RULES["ru"] not in service.prepare(chat_id, f"Why?\n{code}", TurnOptions()).system


def test_every_text_of_the_page_has_its_russian_under_one_key() -> None:
    translations = I18N.translations_dict
    assert set(translations) == {"en", "ru"}
    assert len({key(text) for text in TEXTS}) == len(TEXTS), "two texts share a key"
    for text, russian in TEXTS.items():
        assert translations["en"][key(text)] == text and translations["ru"][key(text)] == russian
        assert russian.strip() and (CYRILLIC.search(russian) or text in ("Top-p",)), text


@contextmanager
def page_in(accept_language: str, cookie: str = "") -> Iterator[None]:
    """While Gradio handles an event of a browser with this Accept-Language (and switch cookie)."""
    cookies = {STORAGE_KEY: cookie} if cookie else {}
    token = LocalContext.request.set(gr.Request(headers={"accept-language": accept_language}, cookies=cookies))
    try:
        yield
    finally:
        LocalContext.request.reset(token)


def test_the_servers_lines_follow_the_browser_and_the_switch(service: ChatService) -> None:
    entry = {
        "title": "Среднее значение списка",
        "origin": "set",
        "model_refused": "not in the asked format",
        "task": "Напишите `average(nums)`.",
        "tests": ["assert average([]) == 0.0"] * 4,
        "rung": 2,
        "hint": "Сначала проверьте пустой список.",
        "pseudocode": "если nums пуст: вернуть 0.0",
        "solution": "def average(nums): ...\n",
        "runs": 2,
        "solved_with": "hint",
        "last": {"passed": 3, "total": 4, "solved": False, "raised": "ZeroDivisionError"},
    }
    with page_in("ru-RU,ru;q=0.9,en;q=0.8"):
        assert page_language() == "ru"
        assert render.header_line({"title": "x", "task": "debug", "level": "beginner"}, None) == (
            "**x** · Найти и исправить ошибку · Новичок"
        )
        assert [span(s) for s in (60, 120, 300, 3600, 86400, 2 * 86400, 21 * 86400)] == [
            "1 минуту", "2 минуты", "5 минут", "1 час", "1 день", "2 дня", "21 день",
        ]  # fmt: skip
        stats = {"completion_tokens": 12, "tokens_per_s": 30.0, "ttft_s": 0.25}
        assert render.stats_line(stats) == "токенов: 12 · 30.0 ток./с · первый токен через 0.25 с"
        verdict = {
            "status": "verified",
            "passed": 4,
            "total": 4,
            "repairs": 0,
            "summary": "verified: 4/4 checks passed",
        }
        assert render.verdict_markdown(verdict) == "✅ проверено: пройдены проверки — 4 из 4"
        assert "(упражнение модели не подошло: не в заданном формате)" in practice.exercise_text(entry)
        assert "*Скрытых тестов: 4." in practice.exercise_text(entry)
        ladder = practice.ladder_text(entry)
        assert ladder.startswith("**Подсказка:** Сначала проверьте") and "**Псевдокод:**" in ladder
        assert practice.result_text(entry) == (
            "❌ Пройдено скрытых тестов: 3 из 4. В одном из них ваш код выбросил ZeroDivisionError. "
            "Продолжайте! *(запусков: 2, с подсказкой)*"
        )
        assert render.status_markdown("checking 2 of 3…") == "*⏳ проверка 2 из 3…*"
        fixing = render.status_markdown("1 of 3 checks fails · fixing (round 1 of 2)")
        assert fixing == "*⏳ не пройдены проверки — 1 из 3 · исправляю (раунд 1 из 2)*"
        assert [c["display_text"] for c in chat.example_cards()][0] == "Написать код: функция Фибоначчи с тестами"
        assert re.fullmatch(r"Около \d+ из 2,048 токенов окна модели \(\d+%\)", composer.meter_line(service, "Привет"))
        assert render.export_links("download/chats/x").startswith("Скачать: ")
    with page_in("ru-RU", cookie="en"):  # the switch wins over the browser
        assert page_language() == "en" and render.stats_line(stats).startswith("12 tokens")
    with page_in("de-DE,de;q=0.9,en;q=0.5"):
        assert page_language() == "en"
    assert page_language() == "en", "outside a request (exports, logs): English"
    solved_at_once = entry | {"runs": 1, "solved_with": "no help", "last": {"solved": True, "total": 4, "passed": 4}}
    assert practice.result_text(solved_at_once) == "✅ All 4 hidden tests pass. Solved! *(1 run)*"
