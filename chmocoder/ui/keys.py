"""Keyboard shortcuts and the phone layout, as one script in the page's <head> (Gradio's `head`).

The shortcuts press the page's own buttons, so they do exactly what a click does: Esc is Stop (only
while an answer is being written or waits for the model; an open dropdown keeps its own Esc),
Ctrl/⌘+Shift+O is New chat, Ctrl/⌘+K (or "/" outside a text field) goes to the search box, opening
the sidebar first if it is collapsed. At phone width (PHONE, also the stylesheet's) the sidebar is
collapsed once the page is ready, so the chat gets the whole screen; its toggle opens it as usual.
"""

from __future__ import annotations

SHORTCUTS = (("Esc", "stops the answer"), ("Ctrl+Shift+O", "new chat"), ("Ctrl+K", "search"))
HINT = "*" + " · ".join(f"{key} {what}" for key, what in SHORTCUTS) + "*"
PHONE = "(max-width: 768px)"

HEAD = """<script>
(() => {
  const $ = (selector) => document.querySelector(selector);
  const sidebar = () => $('#chmocoder-sidebar');
  const openSidebar = () => {
    const side = sidebar();
    if (side && !side.classList.contains('open')) side.querySelector('.toggle-button')?.click();
  };
  // A turn runs (or waits in the queue) while the chatbot's progress overlay is shown.
  const answering = () => !!$('#chmocoder-chat > .wrap:not(.hide)');
  const typing = (el) => el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
  const focusSearch = () => {
    openSidebar();
    setTimeout(() => $('#chmocoder-search textarea, #chmocoder-search input')?.focus(), 50);
  };
  document.addEventListener('keydown', (event) => {
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (event.key === 'Escape' && !$('[role=listbox]') && answering()) {
      $('#chmocoder-stop')?.click();
    } else if (mod && event.shiftKey && key === 'o') {
      event.preventDefault();
      $('#chmocoder-new')?.click();
      setTimeout(() => $('#chmocoder-input textarea')?.focus(), 50);
    } else if ((mod && !event.shiftKey && key === 'k') || (event.key === '/' && !mod && !typing(event.target))) {
      event.preventDefault();
      focusSearch();
    }
  });
  if (window.matchMedia('%(phone)s').matches) {
    // Once the page is ready (Gradio re-applies the sidebar's `open` while it loads, undoing an
    // earlier click), collapse it, once.
    const collapse = new MutationObserver(() => {
      if (!document.body?.dataset.chmocoderReady) return;
      collapse.disconnect();
      if (sidebar()?.classList.contains('open')) sidebar().querySelector('.toggle-button')?.click();
    });
    const ready = { subtree: true, attributes: true, attributeFilter: ['data-chmocoder-ready'] };
    collapse.observe(document.documentElement, ready);
  }
})();
</script>""".replace("%(phone)s", PHONE)
