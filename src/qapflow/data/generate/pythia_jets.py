"""Generate the jets of one class with Pythia 8, one independent, seeded run per chunk."""

from __future__ import annotations

import numpy as np

from qapflow.common.errors import QapflowError
from qapflow.data.generate.features import jet_features
from qapflow.data.generate.detector import detector_response
from qapflow.data.generate.lhe_handoff import TwoStagePythia, read_settings
from qapflow.data.generate.jets import final_state, final_state_with_ids, hard_targets, leading_jet, matched_jets
from qapflow.data.generate.processes import PROCESSES, PYTHIA_MAX_SEED, GeneratorSettings
from qapflow.data.schema import FEATURE_NAMES

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
    """The jets one event gives under the recipe: particles or detector objects, then the
    matched jets or the leading one."""
    if settings.detector is None:
        particles = final_state(pythia.event, settings.particle_max_abs_eta)
    else:
        p4, pdg = final_state_with_ids(pythia.event)
        particles = detector_response(p4, pdg, settings.detector, detector_rng).p4
    if settings.jet_selection == "leading":
        return leading_jet(particles, settings)
    return matched_jets(particles, hard_targets(pythia.process, process), settings)


def generate_class_jets(
    class_name: str, n_jets: int, settings: GeneratorSettings, seed: int
) -> tuple[np.ndarray, int]:
    """Return (features [n_jets, 16] float32, events generated) for one class."""
    process = PROCESSES[class_name]
    pythia = make_pythia(class_name, settings, seed)
    detector_rng = np.random.default_rng(seed)  # the chunk's seed: independent of the worker count
    rows: list[np.ndarray] = []
    events = failed = 0
    while len(rows) < n_jets:
        if not pythia.next():
            failed += 1
            if failed > MAX_FAILED_EVENTS:
                raise GenerationError(f"Pythia failed {failed} events for class {class_name!r}")
            continue
        events += 1
        for constituents, groomed in event_jets(pythia, process, settings, detector_rng):
            rows.append(jet_features(constituents, groomed))
            if len(rows) == n_jets:
                break
    features = np.stack(rows).astype(np.float32) if rows else np.zeros((0, len(FEATURE_NAMES)))
    return features, events
