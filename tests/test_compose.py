"""docker-compose.yml and deploy/: checked statically (Docker does not run here).

What would otherwise only fail on a deployment day: a setting name that
``digitizer.config.Settings`` does not have (pydantic-settings ignores it
silently), a service wired to a host that does not exist, a store published to
the network, an unpinned image, a secret with a default.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import types
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from digitizer.config import Settings
from storage.embedded import s3_config_json

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
LONG_RUNNING = {"seaweedfs", "minio", "redis", "postgres", "api", "worker"}
APP_SERVICES = ("api", "worker", "migrate", "backup")
STORES = ("postgres", "redis", "seaweedfs")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def interpolate(value: str) -> str:
    """Resolve compose variables as if .env were empty: defaults, else a placeholder."""

    def sub(match: re.Match[str]) -> str:
        op = match["op"] or ""
        if op.endswith("-"):
            return match["arg"]
        return f"x{match['name'].lower()}"

    return VAR.sub(sub, value)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def settings_path_exists(env_name: str) -> bool:
    """Whether ``SOHOA_A__B`` names a field (walking nested models) of Settings."""
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter") or "__"
    if not env_name.startswith(prefix):
        return False
    model: type[BaseModel] | None = Settings
    parts = env_name[len(prefix) :].lower().split(delimiter)
    for i, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = _model_in(annotation)
        if i < len(parts) - 1 and model is None:
            return False
    return True


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``Optional[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


# -- services and health -----------------------------------------------------------------
def test_the_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {*LONG_RUNNING, "migrate"}


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert services[name].get("restart") == "unless-stopped", name
    for one_shot in ("migrate", "backup"):
        assert "healthcheck" not in services[one_shot]  # it exits
        assert services[one_shot]["restart"] == "no"


def test_python_healthchecks_compile(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        compile(test[3], f"{name}-healthcheck", "exec")
    assert "/healthz" in services["api"]["healthcheck"]["test"][3]


def test_redis_persists_with_an_append_only_file(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def test_stores_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    targets = {
        "seaweedfs": "/data",
        "minio": "/data",
        "redis": "/data",
        "postgres": "/var/lib/postgresql/data",
    }
    for name, target in targets.items():
        volumes = compose["services"][name]["volumes"]
        named = [v.split(":")[0] for v in volumes if v.split(":")[1] == target]
        assert named and named[0] in compose["volumes"], name


def test_only_the_api_is_published(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"api"}
    (mapping,) = services["api"]["ports"]
    # Loopback unless the operator says otherwise; the container side is 8000.
    assert interpolate(mapping) == "127.0.0.1:8000:8000"
    command = services["api"]["command"]
    assert command[:2] == ["sohoa", "api"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"


# -- images ------------------------------------------------------------------------------
def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", name


def test_minio_is_an_opt_in_profile_pinned_to_its_last_release(
    services: dict[str, dict[str, Any]],
) -> None:
    minio = services["minio"]
    assert minio["profiles"] == ["minio"]
    image = minio["image"]
    assert "minio/minio:" in image
    assert re.search(r":RELEASE\.20\d\d-\d\d-\d\dT\d\d-\d\d-\d\dZ$", image), image
    optional = {"minio", "backup"}
    assert all("profiles" not in svc for name, svc in services.items() if name not in optional)


def test_seaweedfs_runs_mini_with_the_rendered_identities(
    services: dict[str, dict[str, Any]],
) -> None:
    weed = services["seaweedfs"]
    assert weed["image"].startswith("chrislusf/seaweedfs:")
    assert weed["command"][0] == "mini"
    assert "-s3.port=8333" in weed["command"]
    assert "-master.telemetry=false" in weed["command"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in weed["volumes"]}
    template = mounts["/etc/sohoa/s3.json.template"]
    script = mounts["/etc/sohoa/seaweedfs-entrypoint.sh"]
    assert (ROOT / template).is_file() and (ROOT / script).is_file()
    assert weed["entrypoint"][-1] == "/etc/sohoa/seaweedfs-entrypoint.sh"


# -- wiring ------------------------------------------------------------------------------
def test_app_services_share_one_environment(services: dict[str, dict[str, Any]]) -> None:
    envs = [env_of(services[name]) for name in APP_SERVICES]
    assert all(env == envs[0] for env in envs)


def test_every_sohoa_variable_is_a_real_setting(services: dict[str, dict[str, Any]]) -> None:
    names = {k for name in APP_SERVICES for k in env_of(services[name])}
    assert names, "no SOHOA_* settings at all"
    assert all(k.startswith("SOHOA_") for k in names)
    unknown = sorted(k for k in names if not settings_path_exists(k))
    assert not unknown, f"not fields of digitizer.config.Settings: {unknown}"
    # The checker itself: it must reject what Settings would silently ignore.
    assert not settings_path_exists("SOHOA_S3__ENDPIONT")
    assert not settings_path_exists("SOHOA_NOPE")
    assert not settings_path_exists("SOHOA_PUBLIC_BASE_URL__X")
    assert settings_path_exists("SOHOA_DB__URL")


def test_settings_load_from_the_compose_environment(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("SOHOA_"):
            monkeypatch.delenv(key)
    for key, value in env_of(services["api"]).items():
        monkeypatch.setenv(key, interpolate(value))
    settings = Settings()
    assert settings.s3.endpoint == "seaweedfs:8333"
    assert settings.s3.access_key == "xs3_access_key"
    assert settings.s3.secure is False
    assert settings.s3.sse is True  # encrypted at rest unless the operator says otherwise
    assert urlsplit(settings.redis.url).hostname == "redis"
    assert urlsplit(settings.db.url).hostname == "postgres"
    assert settings.db.url.startswith("postgresql+psycopg://sohoa:")


def test_app_services_point_at_the_service_names(services: dict[str, dict[str, Any]]) -> None:
    env = {k: interpolate(v) for k, v in env_of(services["api"]).items()}
    hosts = {
        "SOHOA_S3__ENDPOINT": urlsplit(f"//{env['SOHOA_S3__ENDPOINT']}"),
        "SOHOA_REDIS__URL": urlsplit(env["SOHOA_REDIS__URL"]),
        "SOHOA_DB__URL": urlsplit(env["SOHOA_DB__URL"]),
    }
    assert (hosts["SOHOA_S3__ENDPOINT"].hostname, hosts["SOHOA_S3__ENDPOINT"].port) == (
        "seaweedfs",
        8333,
    )
    assert (hosts["SOHOA_REDIS__URL"].hostname, hosts["SOHOA_REDIS__URL"].port) == (
        "redis",
        6379,
    )
    db = hosts["SOHOA_DB__URL"]
    assert (db.hostname, db.port, db.path, db.username) == ("postgres", 5432, "/sohoa", "sohoa")
    for parsed in hosts.values():
        assert parsed.hostname in services
    postgres = env_of(services["postgres"])
    assert postgres["POSTGRES_USER"] == db.username
    assert postgres["POSTGRES_DB"] == db.path.lstrip("/")


def test_secrets_have_no_defaults(services: dict[str, dict[str, Any]]) -> None:
    """A forgotten secret stops `docker compose`; it never falls back to a known value."""
    secret_vars = {
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "S3_SSE_KEK",
        "POSTGRES_PASSWORD",
        "SOHOA_SECRET_KEY",
    }
    seen: set[str] = set()
    for name, svc in services.items():
        for key, value in env_of(svc).items():
            for match in VAR.finditer(value):
                if match["name"] in secret_vars:
                    seen.add(match["name"])
                    assert match["op"] == ":?", f"{name}.{key}: {match[0]}"
            if any(word in key for word in ("PASSWORD", "SECRET")):
                assert VAR.search(value), f"{name}.{key} is a literal secret"
    assert seen == secret_vars
    # Each container of the app must use the same key: required, not per-container.
    assert "SOHOA_SECRET_KEY" in env_of(services["worker"])


def test_env_example_names_every_variable() -> None:
    used = {m["name"] for m in VAR.finditer(COMPOSE.read_text())}
    example = DEPLOY / "env.example"
    defined = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used == defined


def test_workers_scale_out(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["command"] == ["sohoa", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker  # a fixed name forbids replicas
    assert "ports" not in worker


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["command"] == ["sohoa", "migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        for store in STORES:
            assert deps[store]["condition"] == "service_healthy", (name, store)
        for dep in deps:
            assert dep in services and (dep == "migrate" or "healthcheck" in services[dep])


def test_app_images_build_from_deploy_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert build == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert froms and all(f == "python:3.11-slim-bookworm" for f in froms)
    assert "tesseract-ocr-vie" in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".env", ".git", ".venv"} <= set(ignored)


# -- deploy/s3.json and its renderer -----------------------------------------------------
def test_s3_template_matches_the_embedded_identities() -> None:
    template = (DEPLOY / "s3.json").read_text()
    rendered = template.replace("${S3_ACCESS_KEY}", "ak").replace("${S3_SECRET_KEY}", "sk")
    assert json.loads(rendered) == json.loads(s3_config_json("ak", "sk"))


def _run_entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake_weed = tmp_path / "weed"
    fake_weed.write_text('#!/bin/sh\necho "args: $*"\n')
    fake_weed.chmod(0o755)
    return subprocess.run(
        ["sh", str(DEPLOY / "seaweedfs-entrypoint.sh"), "mini", "-dir=/data"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "S3_CONFIG_TEMPLATE": str(DEPLOY / "s3.json"),
            "S3_CONFIG": str(tmp_path / "s3.json"),
            "WEED": str(fake_weed),
            "WEED_S3_SSE_KEK": "0123456789abcdef" * 4,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_seaweedfs_entrypoint_renders_the_identities(tmp_path: Path) -> None:
    secret = "Zm9vYmFy+/=_.~-0123456789abcdef"
    done = _run_entrypoint(tmp_path, S3_ACCESS_KEY="sohoa", S3_SECRET_KEY=secret)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"args: mini -dir=/data -s3.config={tmp_path / 's3.json'}"
    assert json.loads((tmp_path / "s3.json").read_text()) == json.loads(
        s3_config_json("sohoa", secret)
    )
    assert (tmp_path / "s3.json").stat().st_mode & 0o077 == 0  # private


@pytest.mark.parametrize(
    ("key", "secret"), [("sohoa", ""), ("", "abc"), ("sohoa", 'a"b'), ("so&hoa", "abc")]
)
def test_seaweedfs_entrypoint_refuses_bad_keys(tmp_path: Path, key: str, secret: str) -> None:
    done = _run_entrypoint(tmp_path, S3_ACCESS_KEY=key, S3_SECRET_KEY=secret)
    assert done.returncode == 64
    assert "seaweedfs:" in done.stderr
    assert not (tmp_path / "s3.json").exists()


@pytest.mark.parametrize("kek", ["", "abc", "g" * 64, "0" * 63, "0" * 65, "0" * 62 + " 1"])
def test_seaweedfs_entrypoint_refuses_a_bad_sse_key(tmp_path: Path, kek: str) -> None:
    done = _run_entrypoint(tmp_path, S3_ACCESS_KEY="sohoa", S3_SECRET_KEY="s", WEED_S3_SSE_KEK=kek)
    assert done.returncode == 64
    assert "WEED_S3_SSE_KEK" in done.stderr
    assert not done.stdout  # weed never started


# -- encryption at rest and backups ------------------------------------------------------
def test_objects_are_encrypted_at_rest(services: dict[str, dict[str, Any]]) -> None:
    """SeaweedFS gets a required key; sohoa asks for SSE-S3 on every write by default."""
    kek = env_of(services["seaweedfs"])["WEED_S3_SSE_KEK"]
    match = VAR.fullmatch(kek)
    assert match and match["name"] == "S3_SSE_KEK" and match["op"] == ":?"
    sse = env_of(services["api"])["SOHOA_S3__SSE"]
    assert settings_path_exists("SOHOA_S3__SSE")
    assert interpolate(sse) == "true"


def test_backup_is_an_on_demand_one_shot(services: dict[str, dict[str, Any]]) -> None:
    backup = services["backup"]
    assert backup["profiles"] == ["backup"]  # never started by `docker compose up`
    assert backup["command"] == ["sohoa", "backup", "/backups"]
    assert env_of(backup) == env_of(services["api"])
    (mount,) = backup["volumes"]
    host, target = interpolate(mount).rsplit(":", 1)
    assert target == "/backups" and host == "./backups"
    assert "ports" not in backup
    for store in ("postgres", "seaweedfs"):
        assert backup["depends_on"][store]["condition"] == "service_healthy"


def test_image_has_matching_backup_tools(services: dict[str, dict[str, Any]]) -> None:
    """pg_dump refuses a server newer than itself: the client major is the server's."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    server_major = services["postgres"]["image"].split(":")[1].split(".")[0]
    (client_major,) = re.findall(r"^ARG PG_MAJOR=(\d+)$", dockerfile, re.M)
    assert client_major == server_major
    assert '"postgresql-client-${PG_MAJOR}"' in dockerfile
    assert re.search(r"apt-get install[^\n]*\brclone\b", dockerfile)
