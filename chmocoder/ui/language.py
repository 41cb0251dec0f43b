"""The page in English and Russian, with Gradio's i18n: it follows the browser's language, and the
sidebar's switch overrides that for this browser (kept in its localStorage and a cookie).

Two kinds of text:
- the page's own labels: `tr("Send")` is the English text, which Gradio shows in the page's language.
  Every text passed to `tr` is in TEXTS with its Russian; `tr` refuses one that is not, so a label
  cannot be left untranslated. Gradio's own texts (Clear, Copy, Loading…) come translated with Gradio.
- lines the server writes as it paints (headers, stats, verdicts, practice): `say("expires in {span}",
  span=...)`, in the language of the request being handled (the cookie, else the browser's
  Accept-Language), like gettext; outside a request (tests, exports), English. A line missing from
  SAID stays English. Sentences of the services (refusals, a verdict's reason) stay English.

The switch: Gradio picks the language once, from the browser, before the page's script runs; the
script then calls the `changeLocale` that Gradio's own settings panel uses, from Gradio's `core`
module (the same module instance, imported again by its URL), so no reload is needed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import gradio as gr
from gradio.i18n import I18nData

from ..gradio_internals import current_request
from ..library import duration
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
    "*Someone else started this chat: you can read and continue it, not rename, share or delete it.*": (
        "*Этот чат начал кто-то другой: его можно читать и продолжать, но не переименовывать, не делиться "
        "им и не удалять.*"
    ),
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
  const cookie = choice === 'auto' ? '=; max-age=0' : '=' + choice + '; max-age=31536000';
  document.cookie = '{STORAGE_KEY}' + cookie + '; path=/; SameSite=Lax';
  window.chmocoderLanguage?.(choice);
}}"""
# On load: the switch shows the stored choice, and the cookie (the server's copy) is set again.
STORED_JS = f"""() => {{
  const choice = localStorage.getItem('{STORAGE_KEY}') || 'auto';
  if (choice !== 'auto') document.cookie = '{STORAGE_KEY}=' + choice + '; max-age=31536000; path=/; SameSite=Lax';
  return choice;
}}"""

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


# -- lines the server writes ---------------------------------------------------------------------------

# English template → Russian (a TEXTS label is said with its Russian too). Values are filled in after
# the choice ({span}: a duration, see `span`).
SAID: dict[str, str] = {
    " · expires in {span}": " · истекает через {span}",
    "*Expires in less than a minute: it is kept {keep} after its last message.*": (
        "*Истекает меньше чем через минуту: чат хранится {keep} после последнего сообщения.*"
    ),
    "*Expires in {span}: it is kept {keep} after its last message.*": (
        "*Истекает через {span}: чат хранится {keep} после последнего сообщения.*"
    ),
    "{span} after the last message": "{span} после последнего сообщения",
    " · opened by link": " · открыт по ссылке",
    "*No chat holds every word of “{query}”.*": "*Ни в одном чате нет всех слов «{query}».*",
    "*{found} chats found (newest first).*": "*Найдено чатов: {found} (сначала новые).*",
    "*{found} chats found (at most newest first).*": "*Найдено чатов: {found} (показаны не все, сначала новые).*",
    "*1 chat found (newest first).*": "*Найден 1 чат.*",
    "*That chat has expired or does not exist; this is a new chat.*": (
        "*Этот чат истёк или не существует; это новый чат.*"
    ),
    "*Your last message was still waiting for the model when the page closed; it is back in the box.*": (
        "*Ваше последнее сообщение ещё ждало модель, когда страница закрылась; оно снова в поле ввода.*"
    ),
    "Stopped.": "Остановлено.",
    "*That chat has expired.*": "*Этот чат истёк.*",
    "*Chat deleted.*": "*Чат удалён.*",
    "*Removed from your list; the chat itself stays.*": "*Убран из вашего списка; сам чат остаётся.*",
    "*Not saved: {why}*": "*Не сохранено: {why}*",
    "*Saved: new answers follow them.*": "*Сохранено: новые ответы будут их учитывать.*",
    "*Removed.*": "*Удалено.*",
    "*Not rated: {why}*": "*Оценка не сохранена: {why}*",
    "*⚠️ {why}. Run is turned off.*": "*⚠️ {why}. Запуск отключён.*",
    "Download:": "Скачать:",
    # the meter under the message box
    " · 1 file: {names}": " · 1 файл: {names}",
    " · {n} files: {names}": " · файлы ({n}): {names}",
    "About {tokens} of {window} tokens of the model's window ({share}%){attached}": (
        "Около {tokens} из {window} токенов окна модели ({share}%){attached}"
    ),
    (
        "⚠️ About {tokens} tokens{attached}: more than the model's window holds "
        "({window} including the answer). Shorten the message or attach less."
    ): (
        "⚠️ Около {tokens} токенов{attached}: больше, чем вмещает окно модели ({window} вместе с ответом). "
        "Сократите сообщение или прикрепите меньше."
    ),
    # the stats line
    "{n} tokens": "токенов: {n}",
    "Auto: {task}": "Авто: {task}",
    "{rate} tokens/s": "{rate} ток./с",
    "first token after {s} s": "первый токен через {s} с",
    "{n} model passes": "проходов модели: {n}",
    "checks {s} s": "проверки {s} с",
    " (with the files {names})": " (с файлами {names})",
    "{n} oldest messages{files} left out to fit the context window": (
        "не вошли в окно контекста старые сообщения: {n}{files}"
    ),
    "{s} s": "{s} с",
    # verdicts under answers
    "verified: {passed}/{total} checks passed": "проверено: пройдены проверки — {passed} из {total}",
    "verified: {passed}/{total} checks passed after {repairs} repairs": (
        "проверено: пройдены проверки — {passed} из {total}; исправлений: {repairs}"
    ),
    "{failing} of {total} checks fail": "не пройдены проверки — {failing} из {total}",
    "{failing} of {total} checks still fail after {repairs} repairs": (
        "не пройдены проверки — {failing} из {total}, и после исправлений ({repairs})"
    ),
    "not checked: {reason}": "не проверено: {reason}",
    "Earlier attempt {n}": "Прежняя попытка {n}",
    "Earlier attempt {n} — {summary}": "Прежняя попытка {n} — {summary}",
    "Attempt {n} — stopped before it was checked": "Попытка {n} — остановлена до проверки",
    "Attempt {n} — not used: {why}": "Попытка {n} — не использована: {why}",
    # the workspace
    "{icon} exit {code} · {took}": "{icon} код выхода {code} · {took}",
    # practice
    "written for this chat": "составлено для этого чата",
    "from the practice set": "из набора упражнений",
    " (the model's exercise was not used: {why})": " (упражнение модели не подошло: {why})",
    "**Exercise: {title}** · *{source}*": "**Упражнение: {title}** · *{source}*",
    "*{n} hidden tests. Write your solution in the editor above, then press **Check my solution**.*": (
        "*Скрытых тестов: {n}. Напишите решение в редакторе выше и нажмите **Проверить решение**.*"
    ),
    "**Hint:** {text}": "**Подсказка:** {text}",
    "**Pseudocode:**": "**Псевдокод:**",
    "**Solution:**": "**Решение:**",
    "All {total} hidden tests pass. Solved!": "Все скрытые тесты ({total}) пройдены. Решено!",
    "{passed} of {total} hidden tests pass.": "Пройдено скрытых тестов: {passed} из {total}.",
    " One of them raised {error} in your code.": " В одном из них ваш код выбросил {error}.",
    " Keep going!": " Продолжайте!",
    "Your code does not run:": "Ваш код не запускается:",
    "1 run": "1 запуск",
    "{runs} runs": "запусков: {runs}",
    "with hint": "с подсказкой",
    "with pseudocode": "с псевдокодом",
    "with solution": "после показа решения",
    " Your code was {limit}.": " Ваш код остановлен: {limit}.",
    "the sandbox could not check it": "песочница не смогла его проверить",
    "hint": "подсказка",
    "pseudocode": "псевдокод",
    "solution": "решение",
    "no help": "без подсказок",
    "**Earlier in this chat:** ": "**Раньше в этом чате:** ",
    "not in the asked format": "не в заданном формате",
    "its solution fails its own tests": "его решение не проходит его же тесты",
    "its starter already passes": "заготовка уже проходит тесты",
    "✅ {title} (solved in {runs}, {help})": "✅ {title} (решено; {runs}; {help})",
    "⬜ {title} (not solved: best {best} of {total})": "⬜ {title} (не решено: лучший результат {best} из {total})",
}
UNITS_RU = {"minute": ("минуту", "минуты", "минут"), "hour": ("час", "часа", "часов"), "day": ("день", "дня", "дней")}


def page_language() -> str:
    """Which language the page is in: the switch's cookie, else the browser's first language."""
    request = current_request()
    if request is None:
        return "en"
    chosen = (getattr(request, "cookies", None) or {}).get(STORAGE_KEY)
    if chosen in ("en", "ru"):
        return chosen
    # The first language only, as the browser's own navigator.language (which Gradio's labels follow).
    first = (request.headers.get("accept-language") or "").split(",")[0]
    return "ru" if first.split(";")[0].strip().lower().split("-")[0] == "ru" else "en"


def say(english: str, /, **values: Any) -> str:
    """`english` (a SAID template, or a TEXTS label) in the page's language, with `values` filled in."""
    template = (SAID.get(english) or TEXTS.get(english, english)) if page_language() == "ru" else english
    return template.format(**values) if values else template


def span(seconds: float) -> str:
    """A duration as people say it, in the page's language: "3 days", "3 дня"."""
    english = duration(seconds)
    if page_language() != "ru":
        return english
    number, unit = english.split(" ", 1)
    n, forms = int(number), UNITS_RU[unit.rstrip("s")]
    form = (
        forms[0]
        if n % 10 == 1 and n % 100 != 11
        else forms[1]
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14
        else forms[2]
    )
    return f"{n} {form}"


# What a turn says while its code is checked (chmocoder.chat: Reply.status), on a Russian page.
CHECKING = re.compile(r"^checking (\d+) of (\d+)…$")
FIXING = re.compile(r"^(?P<summary>.+) · fixing \(round (?P<round>\d+) of (?P<rounds>\d+)\)$")
FAILING = re.compile(r"^(\d+) of (\d+) checks? (?:still )?fails?(?: after (\d+) repairs?)?$")


def say_status(status: str) -> str:
    """A turn's status line in the page's language; one of another shape stays as it is."""
    if page_language() != "ru":
        return status
    if status == "writing tests for the code…":
        return "пишу тесты для кода…"
    if checking := CHECKING.match(status):
        return "проверка {} из {}…".format(*checking.groups())
    fixing = FIXING.match(status)
    if not fixing:
        return status
    summary = fixing["summary"]
    if failing := FAILING.match(summary):
        count, total, repairs = failing.groups()
        told = (
            "{failing} of {total} checks still fail after {repairs} repairs"
            if repairs
            else "{failing} of {total} checks fail"
        )
        summary = say(told, failing=count, total=total, repairs=repairs)
    return f"{summary} · исправляю (раунд {fixing['round']} из {fixing['rounds']})"
