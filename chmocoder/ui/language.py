"""The page in English and Russian, with Gradio's i18n: it follows the browser's language, and the
sidebar's switch overrides that for this browser (kept in its localStorage).

`tr("Send")` is the English text, which Gradio shows translated in the browser's language. Every text
passed to `tr` is in TEXTS with its Russian; `tr` refuses one that is not, so a label cannot be left
untranslated. Gradio's own texts (Clear, Copy, Loading…) come translated with Gradio.

The switch: Gradio picks the language once, from the browser, before the page's script runs; the
script then calls the `changeLocale` that Gradio's own settings panel uses, from Gradio's `core`
module (the same module instance, imported again by its URL), so no reload is needed.
"""

from __future__ import annotations

import hashlib
import re

import gradio as gr
from gradio.i18n import I18nData

from ..prompts import LEVEL_LABELS, TASK_LABELS
from .keys import HINT

STORAGE_KEY = "chmocoder-language"
LANGUAGE_NAMES = [("English", "en"), ("Русский", "ru")]  # each in its own language, whatever the page's

# English → Russian, for every text of the page that does not come from a reply.
TEXTS: dict[str, str] = {
    # sidebar
    "New chat": "Новый чат",
    "Search your chats": "Поиск по вашим чатам",
    "Your chats": "Ваши чаты",
    "This chat": "Этот чат",
    "Title": "Название",
    "Rename": "Переименовать",
    "Keep it": "Хранить",
    "Share a read-only link": "Поделиться ссылкой для чтения",
    "Read-only link": "Ссылка для чтения",
    "Delete this chat": "Удалить этот чат",
    "Remove from my list": "Убрать из моего списка",
    "Language": "Язык",
    "As the browser": "Как в браузере",
    HINT: "*Esc останавливает ответ · Ctrl+Shift+O новый чат · Ctrl+K поиск*",
    # chat header and chat
    "**New chat**": "**Новый чат**",
    "Task": "Задача",
    "Level": "Уровень",
    "Chat": "Чат",
    "Ask for code, paste a bug, or ask what a piece of code does.": (
        "Попросите написать код, вставьте код с ошибкой или спросите, что делает фрагмент кода."
    ),
    "Shared chat": "Общий чат",
    # composer
    "Your message (Enter sends, Shift+Enter adds a line); drop or attach text files": (
        "Ваше сообщение (Enter отправляет, Shift+Enter — новая строка); перетащите или прикрепите текстовые файлы"
    ),
    "Send": "Отправить",
    "Stop": "Стоп",
    "Generation settings": "Настройки генерации",
    "Temperature": "Температура",
    "Top-p": "Top-p",
    "Max new tokens": "Макс. новых токенов",
    # standing instructions
    "Standing instructions": "Постоянные инструкции",
    "Standing instructions (on)": "Постоянные инструкции (вкл.)",
    "e.g. Python 3.12, type hints, pytest; short answers": (
        "например: Python 3.12, аннотации типов, pytest; короткие ответы"
    ),
    "Save": "Сохранить",
    "Remove": "Удалить",
    "*Followed in every new answer, after the task and level.*": (
        "*Учитываются в каждом новом ответе, после задачи и уровня.*"
    ),
    # workspace
    "Try it yourself": "Попробуйте сами",
    "Open in the editor": "Открыть в редакторе",
    "Python: the answer's code or your file, yours to edit and run": (
        "Python: код ответа или ваш файл — меняйте и запускайте"
    ),
    "Run": "Запустить",
    "Ask about this in the chat": "Спросить об этом в чате",
    "Output": "Вывод",
    "Errors": "Ошибки",
    # practice
    "Practice": "Практика",
    "Check my solution": "Проверить решение",
    "Hint": "Подсказка",
    "Show pseudocode": "Показать псевдокод",
    "Show the solution": "Показать решение",
    "Solution shown": "Решение показано",
    (
        "*Press **Practice** for a small exercise on what this chat is about. You write it in the editor "
        "above; **Check my solution** runs it against hidden tests.*"
    ): (
        "*Нажмите **Практика**, чтобы получить небольшое упражнение по теме этого чата. Решение пишется в "
        "редакторе выше; **Проверить решение** запускает его на скрытых тестах.*"
    ),
    # tasks and levels (the dropdowns' choices)
    "Auto": "Авто",
    "Write code": "Написать код",
    "Debug and fix": "Найти и исправить ошибку",
    "Explain code": "Объяснить код",
    "Review code": "Ревью кода",
    "Beginner": "Новичок",
    "Intermediate": "Средний",
    "Expert": "Эксперт",
}
assert set(TASK_LABELS.values()) | set(LEVEL_LABELS.values()) <= set(TEXTS), "every task and level is translated"


def key(text: str) -> str:
    """The translation key of an English text: readable, unique ("New chat" and "**New chat**" differ),
    and without dots, which Gradio's i18n reads as nesting."""
    digest = hashlib.sha1(text.encode()).hexdigest()[:6]
    return "chmocoder_" + re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] + "_" + digest


I18N = gr.I18n(en={key(en): en for en in TEXTS}, ru={key(en): ru for en, ru in TEXTS.items()})


def tr(text: str) -> I18nData:
    """`text`, shown in the page's language."""
    if text not in TEXTS:
        raise KeyError(f"no Russian for {text!r}: add it to chmocoder.ui.language.TEXTS")
    return I18N(key(text))


def switch() -> gr.Dropdown:
    """The language switch: the browser's language, or English or Russian for this browser."""
    choices = [(tr("As the browser"), "auto"), *LANGUAGE_NAMES]
    return gr.Dropdown(choices, value="auto", label=tr("Language"), elem_id="chmocoder-language", min_width=120)


def wire(demo: gr.Blocks, language: gr.Dropdown) -> None:
    """Only the browser is involved: the choice is kept in its localStorage and applied at once."""
    language.input(None, [language], None, js=SWITCH_JS, api_visibility="private")
    demo.load(None, None, [language], js=STORED_JS, api_visibility="private")


SWITCH_JS = f"""(choice) => {{
  if (choice === 'auto') localStorage.removeItem('{STORAGE_KEY}');
  else localStorage.setItem('{STORAGE_KEY}', choice);
  window.chmocoderLanguage?.(choice);
}}"""
STORED_JS = f"() => localStorage.getItem('{STORAGE_KEY}') || 'auto'"

# In the page's <head>: apply the stored choice once Gradio has set up its languages.
HEAD = f"""<script>
(() => {{
  const gradioCore = () => performance.getEntriesByType('resource').map((e) => e.name)
    .find((name) => /\\/core-[\\w-]+\\.js$/.test(name));
  window.chmocoderLanguage = async (choice) => {{
    const core = gradioCore();
    if (!core) return;
    const wanted = choice === 'auto' ? (navigator.language || 'en').split('-')[0] : choice;
    (await import(core)).changeLocale(wanted === 'ru' ? 'ru' : 'en');
    document.documentElement.lang = wanted === 'ru' ? 'ru' : 'en';
  }};
  const stored = localStorage.getItem('{STORAGE_KEY}');
  if (stored) window.chmocoderLanguage(stored);
}})();
</script>"""
