"""What the bot itself says, in the customer's language (en, zh, ru)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "handoff_ack": {
        "en": "Thanks for your message. A member of our team will reply here soon. Your ticket is T-{ticket}.",
        "zh": "感谢您的留言。我们的客服人员会尽快在这里回复您。您的工单号是 T-{ticket}。",
        "ru": "Спасибо за сообщение. Наш сотрудник скоро ответит вам здесь. Номер вашего обращения: T-{ticket}.",
    },
    "followup_added": {
        "en": "Thanks, we've added this to T-{ticket}; an agent will reply here.",
        "zh": "谢谢，我们已将这条消息添加到 T-{ticket}；客服人员会在这里回复您。",
        "ru": "Спасибо, мы добавили это к обращению T-{ticket}; сотрудник ответит вам здесь.",
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
    "claim_code_sent": {
        "en": "To link {address} to this chat, type here the 6-digit code we just mailed there. It works once, for "
        "15 minutes.",
        "zh": "为将 {address} 关联到此对话，请在这里输入我们刚发送到该邮箱的 6 位验证码。"
        "验证码仅可使用一次，15 分钟内有效。",
        "ru": "Чтобы привязать {address} к этому чату, введите здесь 6-значный код, который мы только что отправили "
        "на этот адрес. Код действует один раз, 15 минут.",
    },
    "claim_code_mail": {
        "en": "Your code is {code}.\n\nSomeone asked to link this address to a chat with our support. Type the code "
        "in that chat within 15 minutes to confirm it is you. If it was not you, ignore this mail: nothing is "
        "linked without the code.",
        "zh": "您的验证码是 {code}。\n\n有人请求将此邮箱关联到与我们客服的对话。"
        "如果是您本人，请在 15 分钟内在该对话中输入验证码。"
        "如果不是您，请忽略此邮件：没有验证码，什么都不会被关联。",
        "ru": "Ваш код: {code}.\n\nКто-то попросил привязать этот адрес к чату с нашей поддержкой. Если это вы, "
        "введите код в этом чате в течение 15 минут. Если это были не вы, просто проигнорируйте письмо: без кода "
        "ничего не привязывается.",
    },
    "claim_code_subject": {
        "en": "Your verification code",
        "zh": "您的验证码",
        "ru": "Ваш код подтверждения",
    },
    "claim_too_many": {
        "en": "We have sent too many codes to {address} in the last hour. Please try again later.",
        "zh": "过去一小时内我们已向 {address} 发送了太多验证码。请稍后再试。",
        "ru": "За последний час на {address} отправлено слишком много кодов. Пожалуйста, попробуйте позже.",
    },
    "code_ok": {
        "en": "Thank you: {address} is confirmed and linked to this chat.",
        "zh": "谢谢：{address} 已确认并关联到此对话。",
        "ru": "Спасибо: адрес {address} подтверждён и привязан к этому чату.",
    },
    "code_wrong": {
        "en": "That code is not right. Tries left: {left}.",
        "zh": "验证码不正确。剩余尝试次数：{left}。",
        "ru": "Код неверный. Осталось попыток: {left}.",
    },
    "code_refused": {
        "en": "Too many wrong tries: that code no longer works. Leave your email again to get a new one.",
        "zh": "错误次数过多：该验证码已失效。请重新填写邮箱以获取新的验证码。",
        "ru": "Слишком много неверных попыток: этот код больше не действует. Укажите email ещё раз, чтобы получить "
        "новый.",
    },
    "code_expired": {
        "en": "That code has expired. Leave your email again to get a new one.",
        "zh": "该验证码已过期。请重新填写邮箱以获取新的验证码。",
        "ru": "Срок действия кода истёк. Укажите email ещё раз, чтобы получить новый.",
    },
    "code_used": {
        "en": "That code has been used already; each code works once.",
        "zh": "该验证码已被使用；每个验证码只能使用一次。",
        "ru": "Этот код уже использован; каждый код действует один раз.",
    },
    "clarify_question": {
        "en": "To answer you well: which of these do you mean? (Choose one, or reply with its number.)",
        "zh": "为了准确回答您：您指的是以下哪一项？（请选择，或回复对应的编号。）",
        "ru": "Чтобы ответить точно: что из этого вы имеете в виду? (Выберите вариант или ответьте его номером.)",
    },
    "choice_stale": {
        "en": "That question has been answered already or is too old to choose from. Please write your question "
        "again and we will help.",
        "zh": "该问题已经回答过，或已过期，无法再选择。请重新写下您的问题，我们会为您解答。",
        "ru": "На этот вопрос уже ответили, или он устарел, и выбрать вариант нельзя. Пожалуйста, напишите ваш "
        "вопрос ещё раз.",
    },
    "choice_expired": {
        "en": "That question has expired, so we could not take “{label}” as your answer. Please write your question "
        "again and we will help.",
        "zh": "该问题已过期，无法再选择“{label}”。请重新写下您的问题，我们会为您解答。",
        "ru": "Этот вопрос устарел, поэтому выбрать «{label}» уже нельзя. Пожалуйста, напишите ваш вопрос ещё раз.",
    },
    "choice_with_person": {
        "en": "A member of our team has your question already (T-{ticket}) and will reply here; we have told them "
        "you chose “{label}”.",
        "zh": "我们的客服人员已经在处理您的问题（T-{ticket}），会在这里回复您；我们已告诉他们您选择了“{label}”。",
        "ru": "Вашим вопросом уже занимается сотрудник (T-{ticket}), он ответит вам здесь; мы передали ему, что вы "
        "выбрали «{label}».",
    },
    "choice_unknown": {
        "en": "We could not match that choice to a question of ours. Please write your question as text.",
        "zh": "我们无法将该选项对应到我们的提问。请用文字写下您的问题。",
        "ru": "Мы не нашли вопроса, к которому относится этот выбор. Пожалуйста, напишите ваш вопрос текстом.",
    },
    # The contact log's line for a button press: what the customer chose, and why it came too late if it did.
    "choice_logged": {"en": "Chose: {label}", "zh": "已选择：{label}", "ru": "Выбрано: {label}"},
    "choice_logged_answered": {
        "en": "Chose: {label} (the question had been answered already)",
        "zh": "已选择：{label}（该问题已经回答过）",
        "ru": "Выбрано: {label} (на этот вопрос уже ответили)",
    },
    "choice_logged_expired": {
        "en": "Chose: {label} (the question had expired)",
        "zh": "已选择：{label}（该问题已过期）",
        "ru": "Выбрано: {label} (вопрос уже устарел)",
    },
    "choice_logged_closed": {
        "en": "Chose: {label} (the conversation had been closed)",
        "zh": "已选择：{label}（该对话已关闭）",
        "ru": "Выбрано: {label} (обращение уже закрыто)",
    },
    "choice_logged_with_person": {
        "en": "Chose: {label} (the conversation was with our team already)",
        "zh": "已选择：{label}（该对话已转给客服人员）",
        "ru": "Выбрано: {label} (обращением уже занимается сотрудник)",
    },
    "choice_logged_unknown": {
        "en": "Pressed a button that matches no question of ours",
        "zh": "按下了一个无法对应到我们提问的按钮",
        "ru": "Нажата кнопка, которая не относится ни к одному нашему вопросу",
    },
}

INTENT_TITLES: dict[str, dict[str, str]] = {
    "greeting": {"en": "Just saying hello", "zh": "打个招呼", "ru": "Просто поздороваться"},
    "goodbye": {"en": "Saying goodbye", "zh": "道别", "ru": "Попрощаться"},
    "thanks": {"en": "Saying thanks", "zh": "表示感谢", "ru": "Поблагодарить"},
    "order_status": {"en": "Where my order is", "zh": "订单状态", "ru": "Где мой заказ"},
    "delivery": {"en": "Delivery times", "zh": "配送时间", "ru": "Сроки доставки"},
    "refund_return": {"en": "Returns and refunds", "zh": "退货退款", "ru": "Возврат и деньги"},
    "billing_payment": {"en": "Payment and billing", "zh": "支付与账单", "ru": "Оплата и счета"},
    "account_access": {"en": "Logging in to my account", "zh": "账户登录", "ru": "Вход в аккаунт"},
    "pricing": {"en": "Prices", "zh": "价格", "ru": "Цены"},
    "opening_hours": {"en": "Opening hours", "zh": "营业时间", "ru": "Часы работы"},
    "complaint": {"en": "Make a complaint", "zh": "投诉", "ru": "Пожаловаться"},
    "human_handoff": {"en": "Talk to a person", "zh": "转人工客服", "ru": "Поговорить с человеком"},
}


def intent_title(intent: str, language: str | None) -> str:
    """A button label for an intent in the customer's language; an intent without a title reads as its name."""
    table = INTENT_TITLES.get(intent)
    if table is None:
        return intent.replace("_", " ").capitalize()
    return table.get(language or "en", table["en"])


def say(key: str, language: str | None, **values: object) -> str:
    table = TEXTS[key]
    return table.get(language or "en", table["en"]).format(**values)
