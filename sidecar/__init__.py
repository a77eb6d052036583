"""The per-pod sidecar: streams image bytes between an application and the drivers."""
