"""The line under the chat input: the settings every message is sent with (babyterm.chat_settings)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from babyterm.chat_settings import ChatSettings


class SettingsLine(Static):
    """The settings every message is sent with, under the chat input."""

    def show(self, settings: ChatSettings) -> None:
        self.update(Content(settings.summary()))
