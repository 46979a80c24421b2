"""The WhatsApp Cloud API channel (see `channel`)."""

from channels.whatsapp.channel import Refused, WhatsAppChannel

__all__ = ["Refused", "WhatsAppChannel"]
