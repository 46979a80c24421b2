"""What the bot itself says, in the customer's language (en, zh, ru)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "handoff_ack": {
        "en": "Thanks for your message. A member of our team will reply here soon. Your ticket is T-{ticket}.",
        "zh": "感谢您的留言。我们的客服人员会尽快在这里回复您。您的工单号是 T-{ticket}。",
        "ru": "Спасибо за сообщение. Наш сотрудник скоро ответит вам здесь. Номер вашего обращения: T-{ticket}.",
    },
    "empty_message": {
        "en": "We received an empty message. Please write your question as text.",
        "zh": "我们收到了一条空消息。请用文字写下您的问题。",
        "ru": "Мы получили пустое сообщение. Пожалуйста, напишите ваш вопрос текстом.",
    },
    "truncated": {
        "en": "Your message was very long; we kept it whole for our team, who will read it in full.",
        "zh": "您的消息很长；我们已完整保存，客服人员会完整阅读。",
        "ru": "Ваше сообщение очень длинное; мы сохранили его целиком, сотрудник прочтёт его полностью.",
    },
    "csat_question": {
        "en": "Your ticket T-{ticket} is closed. How satisfied were you with our help? Reply 1 (bad) to 5 (great).",
        "zh": "您的工单 T-{ticket} 已关闭。您对我们的服务满意吗？请回复 1（差）到 5（很好）。",
        "ru": "Ваше обращение T-{ticket} закрыто. Насколько вы довольны помощью? Ответьте от 1 (плохо) до 5 (отлично).",
    },
    "csat_already": {
        "en": "You have rated T-{ticket} already. Thank you! Write to us any time if you need more help.",
        "zh": "您已经为 T-{ticket} 评过分了，谢谢！如需更多帮助，请随时联系我们。",
        "ru": "Вы уже оценили обращение T-{ticket}. Спасибо! Пишите, если понадобится ещё помощь.",
    },
    "csat_late": {
        "en": "T-{ticket} was closed a while ago, so we can no longer take a rating for it. Write to us any time "
        "if you need more help.",
        "zh": "T-{ticket} 已关闭较长时间，无法再评分。如需更多帮助，请随时联系我们。",
        "ru": "Обращение T-{ticket} закрыто давно, оценку за него мы уже не принимаем. Пишите, если понадобится "
        "помощь.",
    },
    "csat_thanks": {
        "en": "Thank you for your rating!",
        "zh": "感谢您的评价！",
        "ru": "Спасибо за оценку!",
    },
}


def say(key: str, language: str | None, **values: object) -> str:
    table = TEXTS[key]
    return table.get(language or "en", table["en"]).format(**values)
