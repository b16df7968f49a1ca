#!/usr/bin/env python3
"""Write contract/ingestion_contract/crd_defaults.py from the CRD's schema defaults.

    python hack/gen_crd_defaults.py           # rewrite the module
    python hack/gen_crd_defaults.py --check   # exit 1 if the module is out of date

The CRD (crds/ingestionrollouts.yaml) is the one place a default is written. The operator's
typed spec, its rule thresholds and the API's default routing key read the generated module,
so pure code has the defaults without reading a file at run time. The defaults are computed
with the operator's own structural defaulting (ingestion_operator.crd_validation), the
algorithm the API server applies.
"""

from __future__ import annotations

import argparse
import pprint
import subprocess
import sys
from pathlib import Path
from typing import Any

from ingestion_operator.crd_validation import apply_defaults

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "contract" / "ingestion_contract" / "crd_defaults.py"

HEADER = '''\
"""The IngestionRollout CRD's schema defaults, generated from crds/ingestionrollouts.yaml.

Do not edit: run `python hack/gen_crd_defaults.py` after changing a default in the CRD
(tests/unit/test_crd_schema.py fails while the two disagree). Generated rather than read
at run time so that pure code (the operator's decisions and analysis, the API's settings)
has the defaults without reading a file, while the CRD stays their one source. Treat the
values as read-only.
"""

from __future__ import annotations

from typing import Any, Final
'''


def defaults() -> dict[str, dict[str, Any]]:
    """SPEC: an empty spec once defaulted; WORKER: one spec.workers[] entry's defaults."""
    spec = apply_defaults({"spec": {}})["spec"]
    (worker,) = apply_defaults({"spec": {"workers": [{}]}})["spec"]["workers"]
    return {"SPEC": spec, "WORKER": worker}


def render() -> str:
    comments = {
        "SPEC": "#: `spec: {}` after defaulting, as the API server stores it.",
        "WORKER": "#: One spec.workers[] entry's defaults (deploymentName is required).",
    }
    parts = [HEADER]
    for name, value in defaults().items():
        literal = pprint.pformat(value, width=90, sort_dicts=False)
        parts.append(f"{comments[name]}\n{name}: Final[dict[str, Any]] = {literal}\n")
    return "\n".join(parts)


def formatted(source: str) -> str:
    """The source as `ruff format` leaves it (the lint checks the formatting)."""
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff), "format", "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    source = formatted(render())
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != source:
            print(f"{TARGET.relative_to(REPO)} is out of date: run hack/gen_crd_defaults.py")
            return 1
        return 0
    TARGET.write_text(source)
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
