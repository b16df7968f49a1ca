"""Real servers on 127.0.0.1 for tests, benchmarks and the demo: Temporal, FalkorDB (Bolt),
S3 (moto), Prometheus, an OpenAI-compatible embeddings server, the local Kubernetes control
plane and, where its binaries are absent, the Kubernetes API emulator."""
