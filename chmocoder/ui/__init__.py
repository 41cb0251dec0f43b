"""The Gradio Blocks page, as panels. Thin: every rule of a turn is in ChatService, every chat-list
operation in ChatLibrary; the panels only lay out components and wire their events.

- `page`: the shared states, and `Page.show()`, which each panel paints its part of
- `sidebar`: this browser's chats; search, new, rename, share, delete, downloads
- `chat`: header, chatbot, stats; every event that runs a turn; Stop; the page load
- `feedback`: thumbs up or down on an answer
- `composer`: the message box and its attached files, the window meter, Send, Stop, generation settings
- `instructions`: this browser's standing instructions for every answer
- `share_view`: a shared chat, read-only
- `workspace`: Try it yourself: the latest answer's code, run in the sandbox
- `practice`: an exercise on the chat's topic, checked against hidden tests, with a hint ladder
- `keys`: keyboard shortcuts and the phone layout (a script in the page's head)
- `language`: the page in English and Russian (Gradio's i18n), and the switch between them
- `render`: pure functions from stored data to what is shown
"""

from __future__ import annotations

import gradio as gr

from ..chat import ChatService
from ..client_api import add_api
from ..library import ChatLibrary
from ..practice import PracticeCoach
from ..runner import CodeRunner
from ..settings import Settings
from . import chat, composer, feedback, instructions, language, practice, share_view, sidebar, workspace
from .keys import HEAD as KEYS_HEAD
from .keys import PHONE
from .language import HEAD as LANGUAGE_HEAD
from .language import I18N
from .page import Page

__all__ = ["CSS", "HEAD", "I18N", "build_ui"]

HEAD = KEYS_HEAD + LANGUAGE_HEAD

CSS = """
#chmocoder-keys { font-size: 0.75em; opacity: 0.6; }
#chmocoder-stats { font-size: 0.8em; opacity: 0.7; min-height: 1.2em; }
#chmocoder-notice:empty, #chmocoder-readonly:empty { display: none; }
#chmocoder-title p { margin: 0; }
#chmocoder-shared button[aria-label="Clear"] { display: none; }
details.chmocoder-attempt { border-left: 3px solid var(--border-color-primary); padding-left: 0.6em; }
details.chmocoder-attempt > summary { cursor: pointer; opacity: 0.8; }
details.chmocoder-file > summary { cursor: pointer; font-size: 0.9em; }
/* Editing a question edits its text (its first part), not its attached files */
#chmocoder-chat .user-row .message.thought textarea.edit-textarea { display: none; }
#chmocoder-meter { font-size: 0.8em; opacity: 0.7; }
#chmocoder-meter:empty { display: none; }
#chmocoder-workspace-note:empty, #chmocoder-run-result:empty { display: none; }
#chmocoder-practice-ladder:empty, #chmocoder-practice-result:empty, #chmocoder-practice-earlier:empty { display: none; }
@media PHONE {  /* a phone: the title above the task and level, each the full width */
  #chmocoder-head { flex-direction: column; align-items: stretch; }
  #chmocoder-head > * { min-width: 0 !important; width: 100%; }
  #chmocoder-composer { flex-wrap: wrap !important; }  /* the message box on its own line, Send and Stop below */
  #chmocoder-composer > :has(#chmocoder-input) { flex-basis: 100% !important; min-width: 100% !important; }
}
#chmocoder-stdout textarea, #chmocoder-stderr textarea { font-family: var(--font-mono); font-size: 0.85em; }
""".replace("PHONE", PHONE)  # the width at which keys.HEAD also collapses the sidebar


def build_ui(
    service: ChatService,
    library: ChatLibrary,
    settings: Settings,
    runner: CodeRunner | None = None,
    coach: PracticeCoach | None = None,
) -> gr.Blocks:
    """The page; `runner` runs the workspace's code and `coach` its exercises (None: this server has
    no sandbox: the workspace says code cannot run here, and Practice says it needs one)."""
    with gr.Blocks(title="ChMOCoder") as demo:
        page = Page(service, library, settings)
        side = sidebar.build(page)
        shared = share_view.build()
        conversation = chat.build(page)
        composing = composer.build(page)
        standing = instructions.build()
        space = workspace.build(page, runner, composing.message)
        exercises = practice.build(page, coach, space)

        turns = chat.Turns(page, conversation, composing)
        turns.wire()
        composer.wire(page, composing)
        feedback.wire(page, conversation)
        sidebar.wire(page, side)
        instructions.wire(page, standing)
        workspace.wire(demo, space, turns)
        practice.wire(page, exercises, conversation.level)
        language.wire(demo, side.language)
        turns.wire_stop()  # after every event that runs a turn
        hide = [composing.row, conversation.chatbot, conversation.row, composing.settings_panel, space.panel]
        hide += [standing.panel, exercises.panel]
        chat.wire_load(demo, page, conversation, composing, shared, hide, side.sidebar)
        add_api(service, library, runner)
    return demo
