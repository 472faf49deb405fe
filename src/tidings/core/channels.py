"""The delivery channels every part of Tidings speaks of."""

from enum import StrEnum


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    CHAT = "chat"
