"""recbench's harness; `bench.load_frame(path)` reads a run folder as a pandas DataFrame (bench/records/frame.py)."""


def __getattr__(name: str):
    """`bench.load_frame`, imported on first use so that `import bench` stays light (no pandas)."""
    if name == "load_frame":
        from bench.records.frame import load_frame

        return load_frame
    raise AttributeError(f"module 'bench' has no attribute '{name}'")
