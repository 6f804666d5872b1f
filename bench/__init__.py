"""recbench's harness; `bench.load_run(path)` reads a run folder as a pandas DataFrame (bench/records/frame.py)."""


def __getattr__(name: str):
    """`bench.load_run`, imported on first use so that `import bench` stays light (no pandas)."""
    if name == "load_run":
        from bench.records.frame import load_run

        return load_run
    raise AttributeError(f"module 'bench' has no attribute '{name}'")
