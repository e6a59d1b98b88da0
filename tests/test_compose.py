"""docker-compose.airflow.yml cannot run here (no Docker engine); check it is consistent instead."""

from __future__ import annotations

from pathlib import Path

import yaml

from airflow_provider_mlconnector.demo import POOLS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.airflow.yml").read_text())
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}


def service_env(name: str) -> dict:
    return COMPOSE["services"][name]["environment"]


def test_official_shape_services_and_images():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "airflow-init", "sandbox", *AIRFLOW_SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command
        assert services[name]["image"] == "ml-connector/airflow:3.3.2"
        assert services[name]["build"] == "."


def test_airflow_version_matches_makefile_and_dockerfile():
    makefile = (ROOT / "Makefile").read_text()
    assert "AIRFLOW_VERSION := 3.3.2" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile
    assert '"apache-airflow==3.3.2"' in dockerfile


def test_celery_postgres_and_a_real_fernet_key():
    env = service_env("airflow-scheduler")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    # Never the official file's empty key: compose refuses to start without one.
    assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
    assert env["MLCONNECTOR_FERNET_KEY"].startswith("${MLCONNECTOR_FERNET_KEY:?")


def test_state_store_on_postgres_and_created_at_init():
    env = service_env("airflow-worker")
    assert env["AIRFLOW_CONN_MLCONNECTOR_STATE"].startswith("postgresql://")
    init_sql = (ROOT / "docker/postgres-init/10-mlconnector.sql").read_text()
    assert "CREATE DATABASE mlconnector_state" in init_sql
    init = "\n".join(COMPOSE["services"]["airflow-init"]["command"])
    assert "airflow_provider_mlconnector.state migrate" in init


def test_pools_match_the_demo_setup():
    init = "\n".join(COMPOSE["services"]["airflow-init"]["command"])
    for pool, (slots, _) in POOLS.items():
        assert f"airflow pools set {pool} {slots} " in init


def test_worker_and_dags_share_the_same_environment():
    assert service_env("airflow-worker")["DUMB_INIT_SETSID"] == "0"
    for name in AIRFLOW_SERVICES:
        assert "./dags:/opt/airflow/dags" in COMPOSE["services"][name]["volumes"]
        assert service_env(name)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )


def test_sandbox_service_serves_the_emulator():
    sandbox = COMPOSE["services"]["sandbox"]
    assert "airflow_provider_mlconnector.sandbox" in sandbox["entrypoint"]
    assert "8900:8900" in sandbox["ports"]


def test_connections_point_at_the_sandbox_service():
    import json

    from airflow_provider_mlconnector.sandbox.core import Sandbox

    env = service_env("airflow-worker")
    for name, conn in Sandbox().connections("http://sandbox:8900").items():
        assert json.loads(env[f"AIRFLOW_CONN_{name.upper()}_DEFAULT"]) == conn
