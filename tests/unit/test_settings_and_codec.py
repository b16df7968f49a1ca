"""Settings from the environment, the vector codec and the offline embedder."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from ingestion_api.settings import ApiSettings
from ingestion_contract.envconfig import describe_settings, load_settings
from ingestion_operator.settings import RolloutOperatorSettings
from ingestion_worker.codec import decode_chunks, encode_chunks, to_float32
from ingestion_worker.embeddings import HashingEmbedder
from ingestion_worker.graph import ChunkRecord
from ingestion_worker.settings import WorkerSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_come_from_the_environment_with_types():
    settings = load_settings(
        WorkerSettings,
        {"TEMPORAL_TASK_QUEUE": "q", "INLINE_LIMIT_BYTES": "10", "S3_ENDPOINT_URL": ""},
    )
    assert settings.task_queue == "q"
    assert settings.inline_limit_bytes == 10
    assert settings.s3_endpoint_url is None
    assert settings.neo4j_uri == WorkerSettings().neo4j_uri


def test_a_bad_value_names_its_variable():
    with pytest.raises(ValueError, match="INLINE_LIMIT_BYTES"):
        load_settings(WorkerSettings, {"INLINE_LIMIT_BYTES": "lots"})


def test_every_setting_is_documented():
    rows = describe_settings(WorkerSettings)
    assert rows and all(env.isupper() and doc for env, _, doc in rows)


def readme_table(module: str) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows of the README table under the heading naming `module`."""
    text = README.read_text()
    heading = re.search(rf"^###[^\n]*`{re.escape(module)}`[^\n]*$", text, re.MULTILINE)
    assert heading, f"README has no settings table for {module}"
    rows = []
    for line in text[heading.end() :].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return rows


@pytest.mark.parametrize(
    ("module", "settings"),
    [
        ("ingestion_worker/settings.py", WorkerSettings),
        ("ingestion_api/settings.py", ApiSettings),
        ("ingestion_operator/settings.py", RolloutOperatorSettings),
    ],
)
def test_the_readme_tables_are_the_settings(module: str, settings: type) -> None:
    assert readme_table(module) == describe_settings(settings)


def test_chunks_survive_the_codec_exactly():
    chunks = [ChunkRecord(0, "héllo", to_float32([0.1, -2.5, 1e-8])), ChunkRecord(1, "x", [])]
    assert decode_chunks(encode_chunks(chunks)) == chunks


def test_offline_embedder_is_deterministic_normalised_and_lexical():
    embedder = HashingEmbedder(64)
    a, b, c = embedder.embed(["invoice overdue", "invoice overdue", "weather report"])
    assert a == b
    assert math.isclose(sum(v * v for v in a), 1.0, rel_tol=1e-9)
    same = sum(x * y for x, y in zip(a, b, strict=True))
    different = sum(x * y for x, y in zip(a, c, strict=True))
    assert same > different
