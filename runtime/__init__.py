"""The environment nodes run in: config, weights folders, model residency, admission, temp files, workflows.

Nothing here imports `nodes/`: nodes depend on the runtime, never the reverse.
"""
