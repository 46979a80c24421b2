"""Trusted identity: which addresses a customer may be reached at and routed by.

An identity the channel vouches for (a Telegram contact shared with the button, the sender of a mail, a website
user signed with `web.identity_secret`) links at once; one a person only typed (an email in the widget, another
person's contact card) is an `IdentityClaim` until the one-time code mailed there is typed back in the same chat
(`codes` holds the rules, `linking` the work inside the dispatcher's batch). Every link is audited.
"""

from bot.identity.codes import looks_like_code, signs, user_hash
from bot.identity.linking import Answered, carries_identity, identify

__all__ = ["Answered", "carries_identity", "identify", "looks_like_code", "signs", "user_hash"]
