"""Pythia 8 settings for the five jet classes, after the recipe of the hls4ml jet data set
(Coleman et al. 2018, JINST 13 T01003; Duarte et al. 2018, JINST 13 P07027):
pp at 13 TeV, one 2->2 process per class with hadronic decays, in a narrow pT-hat window
around 1 TeV, so that each jet's parton or boson has pT near 1 TeV.
"""

from __future__ import annotations

from dataclasses import dataclass

HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
HADRONIC_Z = ["23:onMode = off", "23:onIfAny = 1 2 3 4 5"]


@dataclass(frozen=True)
class JetProcess:
    """One class: the Pythia process switches and which hard particles its jets match."""

    name: str
    settings: tuple[str, ...]
    target_ids: frozenset[int]  # |PDG id| of the hard-process particles jets are matched to
    target_status: int  # |status| of those particles in Pythia's process record


PROCESSES: dict[str, JetProcess] = {
    "g": JetProcess(
        "g",
        ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
        frozenset({21}),
        23,
    ),
    "q": JetProcess(
        "q",
        ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:nQuarkNew = 3"),
        frozenset({1, 2, 3, 4, 5}),
        23,
    ),
    "w": JetProcess("w", ("WeakDoubleBoson:ffbar2WW = on", *HADRONIC_W), frozenset({24}), 22),
    "z": JetProcess(
        "z",
        # gmZmode = 2: pure Z, no photon interference, so the matched boson is a Z.
        ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2", *HADRONIC_Z),
        frozenset({23}),
        22,
    ),
    "t": JetProcess(
        "t",
        ("Top:qqbar2ttbar = on", "6:onMode = off", "6:onIfAny = 24", *HADRONIC_W),
        frozenset({6}),
        22,
    ),
}


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that determines the generated jets, stored with the output file."""

    ecm_gev: float = 13000.0
    pthat_min_gev: float = 950.0
    pthat_max_gev: float = 1050.0
    jet_radius: float = 0.8
    jet_min_pt_gev: float = 500.0
    jet_max_abs_eta: float = 2.5
    particle_max_abs_eta: float = 5.0
    match_radius: float = 0.8
    mmdt_zcut: float = 0.1
    chunk_jets: int = 500

    def pythia_settings(self, process: JetProcess, seed: int) -> list[str]:
        return [
            f"Beams:eCM = {self.ecm_gev}",
            f"PhaseSpace:pTHatMin = {self.pthat_min_gev}",
            f"PhaseSpace:pTHatMax = {self.pthat_max_gev}",
            *process.settings,
            "Random:setSeed = on",
            f"Random:seed = {seed}",
            "Print:quiet = on",
        ]
