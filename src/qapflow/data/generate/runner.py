"""Generate a balanced jet file in seeded chunks over worker processes, resumably.

Each chunk (class, index) is an independent Pythia run whose seed depends only on the run
seed, the class and the chunk index, so the output does not depend on the worker count.
Finished chunks are kept, each written atomically, in `OUT.parts/`; a killed run that is
started again with the same settings generates only the missing chunks. The final file is
written atomically and the parts folder removed.

A chunk is its features `CLASS_NNNNN.npy` and, beside it, its constituents and images
`CLASS_NNNNN.inputs.npz`, written first: the .npy marks the chunk finished.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from importlib.metadata import version
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qapflow.common.atomic import atomic_path, write_json
from qapflow.common.errors import QapflowError
from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES, GeneratorSettings
from qapflow.data.generate.pythia_jets import chunk_seed, generate_class_sample
from qapflow.data.h5file import write_jets
from qapflow.data.schema import CLASSES, JetArrays, one_hot


@dataclass(frozen=True)
class Chunk:
    class_index: int
    index: int
    n_jets: int

    @property
    def name(self) -> str:
        return f"{CLASSES[self.class_index]}_{self.index:05d}.npy"

    @property
    def inputs_name(self) -> str:
        return f"{CLASSES[self.class_index]}_{self.index:05d}.inputs.npz"

    def done(self, parts_dir: Path) -> bool:
        return (parts_dir / self.name).exists() and (parts_dir / self.inputs_name).exists()


def plan_chunks(n_jets: int, chunk_jets: int) -> list[Chunk]:
    """Balanced classes (the first n_jets % 5 classes get one more jet), cut into chunks."""
    chunks = []
    for c in range(len(CLASSES)):
        remaining = n_jets // len(CLASSES) + (1 if c < n_jets % len(CLASSES) else 0)
        index = 0
        while remaining > 0:
            size = min(chunk_jets, remaining)
            chunks.append(Chunk(c, index, size))
            remaining -= size
            index += 1
    return chunks


def _run_chunk(job: tuple[Chunk, GeneratorSettings, int, str]) -> tuple[Chunk, int]:
    chunk, settings, seed, parts_dir = job
    sample = generate_class_sample(
        CLASSES[chunk.class_index],
        chunk.n_jets,
        settings,
        chunk_seed(seed, chunk.class_index, chunk.index),
    )
    # an open file: np.savez given a path would append .npz to the temporary name
    with atomic_path(Path(parts_dir) / chunk.inputs_name) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, constituents=sample.constituents, images=sample.images)
    with atomic_path(Path(parts_dir) / chunk.name) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, sample.features)
    return chunk, sample.events


def _open_parts_dir(parts_dir: Path, manifest: dict) -> None:
    manifest_path = parts_dir / "manifest.json"
    if manifest_path.exists():
        found = json.loads(manifest_path.read_text())
        if found != manifest:
            raise QapflowError(
                f"{parts_dir} holds chunks of a run with other settings or seed; "
                "remove it, or run again with the settings it was made with "
                f"(seed {found.get('seed')}, jets {found.get('n_jets')})"
            )
    else:
        parts_dir.mkdir(parents=True, exist_ok=True)
        write_json(manifest_path, manifest)


def generate_dataset(
    out, n_jets: int, seed: int = 0, workers: int = 1, settings: GeneratorSettings | None = None,
    progress: bool = True,
) -> Path:
    """Generate `n_jets` balanced jets into the HDF5 file `out`; return its path."""
    settings = settings or RECIPES[DEFAULT_RECIPE]
    if n_jets < len(CLASSES):
        raise QapflowError(f"--jets must be at least {len(CLASSES)} (one per class), got {n_jets}")
    if settings.max_constituents < 1:
        raise QapflowError(f"max_constituents must be at least 1, got {settings.max_constituents}")
    out = Path(out)
    parts_dir = out.with_name(out.name + ".parts")
    manifest = {"n_jets": n_jets, "seed": seed, "settings": asdict(settings)}
    _open_parts_dir(parts_dir, manifest)

    chunks = plan_chunks(n_jets, settings.chunk_jets)
    todo = [c for c in chunks if not c.done(parts_dir)]
    jobs = [(c, settings, seed, str(parts_dir)) for c in todo]
    bar = tqdm(total=n_jets, initial=n_jets - sum(c.n_jets for c in todo), unit="jet",
               desc="generating", disable=not progress)
    if workers <= 1:
        results = map(_run_chunk, jobs)
        for chunk, _ in results:
            bar.update(chunk.n_jets)
    else:
        # spawn: each worker starts clean, with its own Pythia and FastJet state
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for chunk, _ in pool.imap_unordered(_run_chunk, jobs):
                bar.update(chunk.n_jets)
    bar.close()

    features = np.concatenate([np.load(parts_dir / c.name) for c in chunks])
    inputs = [np.load(parts_dir / c.inputs_name) for c in chunks]
    constituents = np.concatenate([i["constituents"] for i in inputs])
    images = np.concatenate([i["images"] for i in inputs])
    classes = np.concatenate([np.full(c.n_jets, c.class_index) for c in chunks])
    order = np.random.default_rng(seed).permutation(len(features))
    attrs = {
        "source": "generated",
        "generator": f"pythia8mc {version('pythia8mc')} + fastjet {version('fastjet')}",
        "seed": seed,
        "n_jets": n_jets,
        "settings": json.dumps(asdict(settings), sort_keys=True),
    }
    write_jets(out, JetArrays(features[order], one_hot(classes[order]), attrs,
                              constituents[order], images[order]))
    shutil.rmtree(parts_dir)
    return out
