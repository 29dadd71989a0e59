"""ComfyUI's ``progress_state`` message: the per-node progress map of one running prompt.

Newer ComfyUI clients read ``{"prompt_id", "nodes": {id: {"value", "max", "state", "node_id",
"prompt_id", "display_node_id", "parent_node_id", "real_node_id"}}}`` with state ``running``,
``finished`` or ``error``; it is sent alongside ``progress`` whenever a node starts, reports a
step or ends. Older clients ignore the type.
"""
from __future__ import annotations


class ProgressState:
    """Folds one prompt's executor events into the map; ``update`` returns the message data
    to send after an event that changed it, else None."""

    def __init__(self, prompt_id: str):
        self.prompt_id = prompt_id
        self.nodes: dict[str, dict] = {}

    def _node(self, node_id: str) -> dict:
        return self.nodes.setdefault(node_id, {
            "value": 0, "max": 1, "state": "running", "node_id": node_id,
            "prompt_id": self.prompt_id, "display_node_id": node_id, "parent_node_id": None,
            "real_node_id": node_id})

    def _finish_running(self) -> None:
        for node in self.nodes.values():
            if node["state"] == "running":
                node["state"], node["value"] = "finished", node["max"]

    def update(self, event: str, data: dict) -> dict | None:
        if event == "executing" and data.get("node") is not None:
            self._finish_running()  # one node runs at a time: the one before has ended
            self._node(str(data["node"]))
        elif event == "progress" and data.get("node") is not None:
            node = self._node(str(data["node"]))
            node["value"], node["max"] = data["value"], data["max"]
        elif event == "execution_success":
            self._finish_running()
        elif event == "execution_error" and data.get("node_id") is not None:
            self._node(str(data["node_id"]))["state"] = "error"
        else:
            return None
        return {"prompt_id": self.prompt_id,
                "nodes": {nid: dict(node) for nid, node in self.nodes.items()}}
