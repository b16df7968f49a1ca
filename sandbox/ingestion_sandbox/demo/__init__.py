"""`make demo` (`python -m ingestion_sandbox.demo`): the product doing its main job on a laptop.

A newcomer with no cluster and no Docker should see, within minutes of cloning, what
the operator is for: traffic moving from the legacy pipeline to Temporal step by step,
an injected fault rolled back automatically with the metric named, and a clean retry
to 100%, with no document lost. Every part runs for real on 127.0.0.1 under one
supervisor (servers from ingestion_sandbox, the API, workers and operator as child
processes); the run ends with a summary, a chart, and an exit status that says
whether the story happened, so CI can run it as a smoke test.

Modules: options (flags), prereqs (binaries), samples (seeded documents), children
(child processes), kubelet (worker replicas, fault ConfigMap mount), sandbox (start and
stop everything), traffic (generator and document ledger), monitor (metrics and the live
view), rollout (the applied IngestionRollout, kubectl), timeline (what happened and the
story check), report (summary and chart), story (the chapters).
"""
