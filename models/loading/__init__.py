"""Checkpoint detection and loading for every Stable Cascade network, in every format users have.

`detect(path)` reports what a file/folder/zip holds from its headers; `load(path, kind)` returns the
network in eval mode, built on the meta device and filled tensor by tensor from safetensors into
aligned storage of its own (never a view of the file).
"""
from .errors import LoadError
from .loader import load
from .report import Component, FileReport, detect

__all__ = ["Component", "FileReport", "LoadError", "detect", "load"]
