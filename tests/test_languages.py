"""Two languages: answers come in the question's language (the real test model at temperature 0), and
every label of the page has its Russian."""

from __future__ import annotations

import re
from contextlib import closing

from chmocoder.chat import ChatService, TurnOptions
from chmocoder.prompts import LANGUAGE_RULES, question_language
from chmocoder.ui.language import I18N, TEXTS, key

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
