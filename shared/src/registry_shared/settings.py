"""Settings: every address and limit is an environment variable, read once at start-up."""
from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every service and `registry-admin` read. Service settings extend this."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    registry_port: int = 8080
    registry_external_url: str = ""
    mongodb_url: str = "mongodb://127.0.0.1:27017/registry"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_exchange: str = "registry"
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = "registry"
    s3_secret_key: str = "registry-secret"
    s3_bucket: str = "registry"
    s3_region: str = "us-east-1"
    # Every object key starts with this prefix, so several registries (or test runs) can share a bucket.
    s3_prefix: str = ""
    log_level: str = "info"
    # Per-process identity, so replicas of one service have distinct queues and log fields.
    replica_id: str = ""
    # Seconds an `index.changed` (after an upload or a delete) waits for every live index-api replica to
    # say it applied it, before the client is answered anyway (registry_shared.replicas).
    index_applied_timeout: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _defaults(self) -> CommonSettings:
        if not self.registry_external_url:
            self.registry_external_url = f"http://127.0.0.1:{self.registry_port}"
        self.registry_external_url = self.registry_external_url.rstrip("/")
        return self

    @property
    def mongodb_database(self) -> str:
        """The database named in MONGODB_URL's path, `registry` when none is given."""
        tail = self.mongodb_url.split("://", 1)[-1]
        path = tail.split("/", 1)[1] if "/" in tail else ""
        name = path.split("?", 1)[0]
        return name or "registry"


class HttpSettings(CommonSettings):
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Seconds an HTTP service keeps serving in-flight requests after SIGTERM.
    shutdown_timeout: float = 25.0


class UploadSettings(HttpSettings):
    upload_max_file_size: int = Field(default=5_000_000_000, ge=1)
    upload_verdict_timeout: float = 30.0
    # Each upload in flight holds one part in memory; S3 refuses parts under 5 MiB (but the last).
    upload_part_size: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024)
    # Seconds an upload's reservation of its filename lasts unless renewed (it is, every third of it, while
    # the bytes stream in): a reservation left by a crashed process or a failed undo is reclaimed after it.
    upload_reservation_lease: float = Field(default=30.0, gt=0)
    # Seconds a credential or access lookup is remembered (revocation events drop them at once).
    auth_cache_ttl: float = 5.0


class IndexSettings(HttpSettings):
    proxy_url: str = "http://127.0.0.1:8084"
    proxy_mode: str = "cache"
    index_file_redirect: bool = False
    # Files of at least this many bytes are sent by the gateway straight from S3 (X-Accel-Redirect) when
    # the request came through one that says it can (X-Sendfile-Type); smaller ones, and every request
    # that reached index-api directly, stream through index-api (from its in-memory cache when warm).
    index_send_file_min_size: int = Field(default=1024 * 1024, ge=0)
    auth_cache_ttl: float = 5.0
    # Governance (SPEC §10): hooks to loopback/link-local/private addresses are refused unless this is true;
    # download counts are sent every DOWNLOAD_FLUSH_INTERVAL seconds; the cleanup policies run every
    # CLEANUP_INTERVAL seconds (one replica per period, by a lease in MongoDB).
    webhook_allow_local_network: bool = False
    download_flush_interval: float = Field(default=1.0, gt=0)
    cleanup_interval: float = Field(default=12 * 3600.0, gt=0)


class ProxySettings(HttpSettings):
    proxy_upstream_url: str = "https://pypi.org/simple/"
    proxy_page_ttl: float = 600.0
    proxy_stale_ttl: float = 86400.0
    # Seconds without a byte from upstream before a page or file fetch fails (then stale pages are served).
    proxy_upstream_timeout: float = 30.0
    proxy_part_size: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024)


class WorkerSettings(HttpSettings):
    worker_prefetch: int = 4
    # Webhook delivery (SPEC §10): a non-2xx or no answer within WEBHOOK_TIMEOUT seconds is retried after
    # WEBHOOK_RETRY_DELAY seconds, doubling up to WEBHOOK_RETRY_DELAY_MAX, until WEBHOOK_RETRY_WINDOW seconds
    # have passed since the first failure.
    webhook_allow_local_network: bool = False
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_retry_delay: float = Field(default=10.0, gt=0)
    webhook_retry_delay_max: float = Field(default=640.0, gt=0)
    webhook_retry_window: float = Field(default=7200.0, ge=0)


class WebSettings(HttpSettings):
    """The web interface (services/web, SPEC §11)."""

    # Seconds a signed-in session lasts (it ends sooner when its token is revoked or expires).
    web_session_ttl: float = Field(default=12 * 3600, gt=0)
    # Seconds a token's state or an access decision is remembered (revocation events drop them at once).
    auth_cache_ttl: float = 5.0
