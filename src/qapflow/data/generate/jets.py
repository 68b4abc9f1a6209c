"""From one Pythia event to matched, groomed jets: FastJet clustering and mMDT declustering."""

from __future__ import annotations

import fastjet
import numpy as np

from qapflow.data.generate.processes import GeneratorSettings, JetProcess


def final_state(event, max_abs_eta: float) -> np.ndarray:
    """Visible final-state particles of a Pythia event as rows (px, py, pz, E)."""
    return final_state_table(event, max_abs_eta)[0]


def final_state_table(event, max_abs_eta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The particles of `final_state`, with their PDG ids and electric charges."""
    rows = [
        (p.px(), p.py(), p.pz(), p.e(), p.id(), p.charge())
        for p in event
        if p.isFinal() and p.isVisible() and abs(p.eta()) < max_abs_eta
    ]
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return table[:, :4], table[:, 4].astype(np.int64), table[:, 5]


def final_state_with_ids(event) -> tuple[np.ndarray, np.ndarray]:
    """Every final-state particle (neutrinos too: the detector removes them) and its PDG id."""
    rows = [(p.px(), p.py(), p.pz(), p.e(), p.id()) for p in event if p.isFinal()]
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return table[:, :4], table[:, 4].astype(np.int64)


def hard_targets(process_record, process: JetProcess) -> list[tuple[float, float]]:
    """(rapidity, phi) of the hard-process partons or bosons the class's jets must match."""
    return [
        (p.y(), p.phi())
        for p in process_record
        if p.idAbs() in process.target_ids and p.statusAbs() == process.target_status
    ]


def to_pseudojets(p4: np.ndarray, index: np.ndarray | None = None) -> list:
    """PseudoJets with user_index = row number in `p4` (or `index`)."""
    index = np.arange(len(p4)) if index is None else index
    out = []
    for row, i in zip(p4, index):
        pj = fastjet.PseudoJet(*map(float, row))
        pj.set_user_index(int(i))
        out.append(pj)
    return out


def _delta_r(y1, phi1, y2, phi2) -> float:
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return float(np.hypot(y1 - y2, dphi))


def mmdt_groom(constituents: list, zcut: float) -> np.ndarray:
    """User indices of the constituents kept by the modified mass-drop tagger.

    Recluster with Cambridge/Aachen, then undo the last clustering step repeatedly: while
    the softer branch carries less than `zcut` of the pair's pT, drop it and follow the
    harder branch (mMDT with scalar-pT symmetry, no mass-drop condition = SoftDrop beta 0).
    """
    if len(constituents) == 1:
        return np.array([constituents[0].user_index()])
    ca_def = fastjet.JetDefinition(fastjet.cambridge_algorithm, 1000.0)
    sequence = fastjet.ClusterSequence(list(constituents), ca_def)
    jet = sequence.inclusive_jets(0.0)[0]
    while True:
        # fresh PseudoJets each step: has_parents writes into its arguments
        hard, soft = fastjet.PseudoJet(), fastjet.PseudoJet()
        if not jet.has_parents(hard, soft):
            break
        if hard.pt() < soft.pt():
            hard, soft = soft, hard
        if soft.pt() / (hard.pt() + soft.pt()) > zcut:
            break
        jet = hard
    return np.array([c.user_index() for c in jet.constituents()], dtype=np.intp)


def matched_jets(particles: np.ndarray, targets, settings: GeneratorSettings):
    """Yield (constituent rows, groomed constituent rows) of each jet matched to a target."""
    for index, kept in matched_jet_indices(particles, targets, settings):
        yield particles[index], particles[kept]


def matched_jet_indices(particles: np.ndarray, targets, settings: GeneratorSettings):
    """Yield (constituent row numbers, groomed row numbers) of each jet matched to a target.

    Jets are anti-kT R=settings.jet_radius above the pT and |eta| cuts; each target takes
    the nearest unused jet within settings.match_radius in (y, phi).
    """
    if len(particles) == 0 or not targets:
        return
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    sequence = fastjet.ClusterSequence(to_pseudojets(particles), jet_def)
    jets = [
        j
        for j in sequence.inclusive_jets(settings.jet_min_pt_gev)
        if abs(j.eta()) < settings.jet_max_abs_eta
    ]
    used: set[int] = set()
    for y, phi in targets:
        distances = [
            (_delta_r(y, phi, j.rap(), j.phi()), i) for i, j in enumerate(jets) if i not in used
        ]
        if not distances:
            return
        dr, best = min(distances)
        if dr >= settings.match_radius:
            continue
        used.add(best)
        constituents = list(jets[best].constituents())
        index = np.array([c.user_index() for c in constituents], dtype=np.intp)
        yield index, mmdt_groom(constituents, settings.mmdt_zcut)


def leading_jet(particles: np.ndarray, settings: GeneratorSettings):
    """Yield (constituent rows, groomed constituent rows) of the event's leading jet."""
    for index, kept in leading_jet_indices(particles, settings):
        yield particles[index], particles[kept]


def leading_jet_indices(particles: np.ndarray, settings: GeneratorSettings):
    """Yield (constituent row numbers, groomed row numbers) of the event's leading jet, if it
    passes the pT and |eta| cuts (one jet per event, labelled by the process). Jets are found
    above jet_min_pt_gev; an event whose leading jet is above jet_max_pt_gev gives none."""
    if len(particles) == 0:
        return
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius)
    sequence = fastjet.ClusterSequence(to_pseudojets(particles), jet_def)
    jets = fastjet.sorted_by_pt(sequence.inclusive_jets(settings.jet_min_pt_gev))
    if not jets or abs(jets[0].eta()) >= settings.jet_max_abs_eta:
        return
    if settings.jet_max_pt_gev is not None and jets[0].pt() > settings.jet_max_pt_gev:
        return
    constituents = list(jets[0].constituents())
    index = np.array([c.user_index() for c in constituents], dtype=np.intp)
    yield index, mmdt_groom(constituents, settings.mmdt_zcut)
