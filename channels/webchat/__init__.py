"""Web chat: visitors on a company's site talk to the bot and agents through an embeddable widget."""

from channels.webchat.channel import WebChatChannel
from channels.webchat.frames import BadFrame, parse_frame

__all__ = ["BadFrame", "WebChatChannel", "parse_frame"]
