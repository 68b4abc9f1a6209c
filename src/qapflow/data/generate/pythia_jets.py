"""Generate the jets of one class with Pythia 8, one independent, seeded run per chunk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.common.errors import QapflowError
from qapflow.data.generate.features import jet_features
from qapflow.data.generate.detector import detector_response
from qapflow.data.generate.jet_inputs import jet_inputs, particle_kinds
from qapflow.data.generate.lhe_handoff import TwoStagePythia, read_settings
from qapflow.data.generate.jets import (
    final_state_table,
    final_state_with_ids,
    hard_targets,
    leading_jet_indices,
    matched_jet_indices,
)
from qapflow.data.generate.processes import PROCESSES, PYTHIA_MAX_SEED, GeneratorSettings
from qapflow.data.schema import CONSTITUENT_NAMES, FEATURE_NAMES, IMAGE_PIXELS

MAX_FAILED_EVENTS = 1000


class GenerationError(QapflowError):
    """Pythia refused a setting, failed to initialise, or kept failing events."""


def chunk_seed(base_seed: int, class_index: int, chunk_index: int) -> int:
    """A Pythia seed (1..9e8) that depends only on the run seed, class and chunk."""
    state = np.random.SeedSequence([base_seed, class_index, chunk_index]).generate_state(1)[0]
    return int(state) % PYTHIA_MAX_SEED + 1


def make_pythia(class_name: str, settings: GeneratorSettings, seed: int):
    """A generator with next(), event and process: one Pythia, or two joined by the Les Houches
    interface when the recipe decays resonances isotropically or longitudinally."""
    if settings.resonance_decays in ("isotropic", "longitudinal"):
        process = PROCESSES[class_name]
        return TwoStagePythia(settings.hard_process_settings(process, seed), list(process.decays),
                              seed + 1, settings.ecm_gev, GenerationError,
                              settings.resonance_mass_window_widths,
                              longitudinal_bosons=settings.resonance_decays == "longitudinal")
    if settings.resonance_decays != "in-process":
        raise GenerationError(f"resonance_decays must be 'in-process', 'isotropic' or 'longitudinal', "
                              f"not {settings.resonance_decays!r}")
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    read_settings(pythia, settings.pythia_settings(PROCESSES[class_name], seed), GenerationError)
    if not pythia.init():
        raise GenerationError(f"Pythia failed to initialise for class {class_name!r}")
    return pythia


def event_jets(pythia, process, settings: GeneratorSettings, detector_rng: np.random.Generator):
    """The jets one event gives under the recipe, from particles or detector objects: the
    matched jets or the leading one, each as (constituent rows, groomed rows, the constituents'
    kinds in the detector's numbering, their charges)."""
    if settings.detector is None:
        particles, pdg, charge = final_state_table(pythia.event, settings.particle_max_abs_eta)
        kind = particle_kinds(pdg, charge)
    else:
        p4, pdg = final_state_with_ids(pythia.event)
        seen = detector_response(p4, pdg, settings.detector, detector_rng)
        particles, kind, charge = seen.p4, seen.kind, seen.charge
    if settings.jet_selection == "leading":
        jets = leading_jet_indices(particles, settings)
    else:
        jets = matched_jet_indices(particles, hard_targets(pythia.process, process), settings)
    for index, kept in jets:
        yield particles[index], particles[kept], kind[index], charge[index]


@dataclass
class ClassSample:
    """One class's jets: every array from the same jets, in the same order."""

    features: np.ndarray  # [n, 16] float32
    constituents: np.ndarray  # [n, max_constituents, len(CONSTITUENT_NAMES)] float32
    images: np.ndarray  # [n, IMAGE_PIXELS, IMAGE_PIXELS] float32
    events: int  # events generated


def generate_class_sample(class_name: str, n_jets: int, settings: GeneratorSettings, seed: int
                          ) -> ClassSample:
    """Generate `n_jets` jets of one class: their features, constituents and images."""
    process = PROCESSES[class_name]
    pythia = make_pythia(class_name, settings, seed)
    detector_rng = np.random.default_rng(seed)  # the chunk's seed: independent of the worker count
    rows: list[np.ndarray] = []
    tables: list[np.ndarray] = []
    images: list[np.ndarray] = []
    events = failed = 0
    while len(rows) < n_jets:
        if not pythia.next():
            failed += 1
            if failed > MAX_FAILED_EVENTS:
                raise GenerationError(f"Pythia failed {failed} events for class {class_name!r}")
            continue
        events += 1
        for constituents, groomed, kind, charge in event_jets(pythia, process, settings, detector_rng):
            rows.append(jet_features(constituents, groomed))
            table, image = jet_inputs(constituents, kind, charge, settings.max_constituents)
            tables.append(table)
            images.append(image)
            if len(rows) == n_jets:
                break
    if not rows:
        return ClassSample(np.zeros((0, len(FEATURE_NAMES)), np.float32),
                           np.zeros((0, settings.max_constituents, len(CONSTITUENT_NAMES)), np.float32),
                           np.zeros((0, IMAGE_PIXELS, IMAGE_PIXELS), np.float32), events)
    return ClassSample(np.stack(rows).astype(np.float32), np.stack(tables), np.stack(images), events)


def generate_class_jets(
    class_name: str, n_jets: int, settings: GeneratorSettings, seed: int
) -> tuple[np.ndarray, int]:
    """Return (features [n_jets, 16] float32, events generated) for one class."""
    sample = generate_class_sample(class_name, n_jets, settings, seed)
    return sample.features, sample.events
