"""Where clusters come from: a preset name, a topology YAML file or a Slurm topology.conf.

This module does the file reading, so that :mod:`gefion.core` stays free of I/O.
"""

from __future__ import annotations

from pathlib import Path

from gefion.core.errors import TopologyError
from gefion.core.topology import Cluster, is_preset, preset
from gefion.formats.slurm_topology import parse_slurm_topology
from gefion.formats.topology_yaml import parse_topology


def load_cluster(ref: str, *, base_dir: Path | None = None, gpus_per_node: int = 8) -> Cluster:
    """The cluster ``ref`` names.

    - a preset (``gefion``, ``superpod:N``, ``synthetic:NODESxGPUS[:SU]``): that preset;
    - a path ending in ``.conf``: a Slurm topology.conf, nodes of ``gpus_per_node`` GPUs;
    - any other path: a topology YAML file.

    A relative path is taken from ``base_dir`` (default: the working directory); error
    messages name the file as ``base_dir / ref``. A name that is neither a preset nor an
    existing file raises :class:`TopologyError` listing the presets.
    """
    if is_preset(ref):
        return preset(ref)
    path = Path(ref).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        if not path.suffix and "/" not in ref:
            # Looks like a mistyped preset rather than a file: say what the presets are.
            try:
                preset(ref)
            except TopologyError as e:
                raise TopologyError(f"{e.message} (and there is no file {str(path)!r})",
                                    field=e.field) from None
        raise TopologyError(f"no such topology file: {str(path)!r}", source=str(path))
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TopologyError(f"cannot read the topology file: {e}", source=source) from None
    if path.suffix == ".conf":
        return parse_slurm_topology(text, source, gpus_per_node=gpus_per_node)
    return parse_topology(text, source)
