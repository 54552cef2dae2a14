"""deploy/k8s/: the Kubernetes instance, run launcher and executor configuration validate
against the installed Dagster (dagster-k8s from the dev extra)."""

import importlib
import importlib.util
from pathlib import Path

import dagster as dg
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "k8s"

pytest.importorskip("dagster_k8s")


def load_yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_instance_config_validates_with_the_k8s_run_launcher():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = load_yaml("dagster-instance.yaml")
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    # every configurable class it names is importable and accepts its config block
    for key in ("run_launcher", "run_coordinator"):
        block = config[key]
        cls = getattr(importlib.import_module(block["module"]), block["class"])
        checked = validate_config(cls.config_type(), block["config"])
        assert checked.success, (key, [e.message for e in checked.errors])
    from dagster_k8s import K8sRunLauncher

    assert config["run_launcher"]["class"] == K8sRunLauncher.__name__


def test_a_broken_launcher_config_is_caught():
    from dagster._config import validate_config
    from dagster_k8s import K8sRunLauncher

    config = load_yaml("dagster-instance.yaml")["run_launcher"]["config"]
    config["max_concurrent_jobs"] = 3  # no such field
    assert not validate_config(K8sRunLauncher.config_type(), config).success


def test_rebuild_run_config_validates_against_the_k8s_job_executor(monkeypatch):
    monkeypatch.setenv("TRIALS_WAREHOUSE", "/warehouse/trials.duckdb")  # set by the pod spec
    spec = importlib.util.spec_from_file_location("trials_k8s_defs", DEPLOY / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    job = module.defs.resolve_job_def("rebuild_job")
    assert job.executor_def.name == "k8s"
    run_config = load_yaml("rebuild-run-config.yaml")
    dg.validate_run_config(job, run_config)  # raises DagsterInvalidConfigError when wrong
    run_config["execution"]["config"]["max_concurrent"] = "many"
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, run_config)
