"""The MLflow schema head remembered beside the store: used while MLflow's migrations are the same, else worked out."""

from __future__ import annotations

import json

import pytest

from activation_compare.private_apis import mlflow_schema_head
from activation_compare.tracking import sqlite_schema


def _refuse():
    raise AssertionError("worked out again although remembered")


def test_the_head_is_remembered_and_then_read_without_mlflows_scripts(tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    assert sqlite_schema.schema_head(store) == mlflow_schema_head()
    remembered = json.loads((tmp_path / "mlflow.db-schema-head").read_text())
    assert remembered == {"fingerprint": sqlite_schema.migrations_fingerprint(), "head": mlflow_schema_head()}
    monkeypatch.setattr(sqlite_schema, "mlflow_schema_head", _refuse)
    assert sqlite_schema.schema_head(store) == remembered["head"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db-schema-head"]  # no scratch file left


@pytest.mark.parametrize("content", ["", "{not json", '{"head": "x"}', '{"fingerprint": "other", "head": "x"}',
                                     '{"fingerprint": "@", "head": 7}'])
def test_a_changed_mlflow_or_a_broken_file_works_it_out_again(tmp_path, content):
    (tmp_path / "mlflow.db-schema-head").write_text(content.replace("@", sqlite_schema.migrations_fingerprint()))
    assert sqlite_schema.schema_head(tmp_path / "mlflow.db") == mlflow_schema_head()
    assert json.loads((tmp_path / "mlflow.db-schema-head").read_text())["head"] == mlflow_schema_head()


def test_the_fingerprint_changes_with_a_migration_script(tmp_path, monkeypatch):
    for name in ("a_1.py", "b_2.py"):
        (tmp_path / name).write_text("revision = 'x'\n")
    monkeypatch.setattr(sqlite_schema, "mlflow_migrations_dir", lambda: tmp_path)
    before = sqlite_schema.migrations_fingerprint()
    (tmp_path / "c_3.py").write_text("revision = 'y'\n")
    assert sqlite_schema.migrations_fingerprint() != before


def test_a_read_only_folder_still_gives_the_head(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(sqlite_schema.os, "replace", fail)
    assert sqlite_schema.schema_head(tmp_path / "mlflow.db") == mlflow_schema_head()
    assert list(tmp_path.iterdir()) == []
