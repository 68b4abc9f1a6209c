"""Pythia 8 settings for the five jet classes, after the recipe of the hls4ml jet data set
(Coleman et al. 2018, JINST 13 T01003; Duarte et al. 2018, JINST 13 P07027):
pp at 13 TeV, one 2->2 process per class with hadronic decays, in a narrow pT-hat window
around 1 TeV, so that each jet's parton or boson has pT near 1 TeV.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qapflow.data.generate.detector import DetectorSettings
from qapflow.data.schema import DEFAULT_MAX_CONSTITUENTS

PYTHIA_MAX_SEED = 900_000_000  # Pythia's Random:seed takes 1..900,000,000
HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
HADRONIC_Z = ["23:onMode = off", "23:onIfAny = 1 2 3 4 5"]


@dataclass(frozen=True)
class JetProcess:
    """One class: the Pythia process switches, the decay modes of its resonances, and which
    hard particles its jets match."""

    name: str
    settings: tuple[str, ...]
    target_ids: frozenset[int]  # |PDG id| of the hard-process particles jets are matched to
    target_status: int  # |status| of those particles in Pythia's process record
    decays: tuple[str, ...] = ()


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
    "w": JetProcess("w", ("WeakDoubleBoson:ffbar2WW = on",), frozenset({24}), 22, tuple(HADRONIC_W)),
    "z": JetProcess(
        "z",
        # gmZmode = 2: pure Z, no photon interference, so the matched boson is a Z.
        ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2"),
        frozenset({23}),
        22,
        tuple(HADRONIC_Z),
    ),
    "t": JetProcess(
        "t",
        ("Top:qqbar2ttbar = on",),
        frozenset({6}),
        22,
        ("6:onMode = off", "6:onIfAny = 24", *HADRONIC_W),
    ),
}


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that determines the generated jets, stored with the output file."""

    recipe: str = "particle-level"
    ecm_gev: float = 13000.0
    pthat_min_gev: float = 950.0
    pthat_max_gev: float = 1050.0
    jet_radius: float = 0.8
    jet_min_pt_gev: float = 500.0
    jet_max_pt_gev: float | None = None  # None: no upper cut
    jet_max_abs_eta: float = 2.5
    particle_max_abs_eta: float = 5.0
    match_radius: float = 0.8
    mmdt_zcut: float = 0.1
    chunk_jets: int = 500
    # "matched": every jet matched to a hard parton or boson of the class; "leading": the
    # event's leading jet, labelled by the process (one sample per class, as the original)
    jet_selection: str = "matched"
    detector: DetectorSettings | None = None  # None: particle level (visible particles)
    # "in-process": Pythia decays W, Z and t inside its 2->2 process, with the matrix element's
    # decay angles; "isotropic": the hard process goes undecayed through the Les Houches
    # interface to a second Pythia, as the original's MadGraph events did (lhe_handoff.py);
    # "longitudinal": the same, with W and Z decayed longitudinally first (boson_decays.py)
    resonance_decays: str = "in-process"
    # with "isotropic": W, Z and t masses within this many widths of the pole (the run card's
    # bwcutoff); None: Pythia's whole Breit-Wigner
    resonance_mass_window_widths: float | None = None
    # how many leading constituents per jet the `constituents` dataset keeps (jet_inputs.py)
    max_constituents: int = DEFAULT_MAX_CONSTITUENTS

    def hard_process_settings(self, process: JetProcess, seed: int) -> list[str]:
        return [
            f"Beams:eCM = {self.ecm_gev}",
            f"PhaseSpace:pTHatMin = {self.pthat_min_gev}",
            f"PhaseSpace:pTHatMax = {self.pthat_max_gev}",
            *process.settings,
            "Random:setSeed = on",
            f"Random:seed = {seed}",
            "Print:quiet = on",
        ]

    def pythia_settings(self, process: JetProcess, seed: int) -> list[str]:
        """One Pythia doing everything: the hard process and its resonances' decay modes."""
        return [*self.hard_process_settings(process, seed), *process.decays]


# The generation recipes by name. hls4ml-lhc-jets follows the original production code
# (github nhanvtran/trackObservables, branch boostedPrecision-hls4ml) where it speaks: parton pT
# 995-1005 GeV (generation/run_card_ptbin.dat: ptj, and pt_min_pdg/pt_max_pdg for W, Z, t),
# resonances within its bwcutoff of 15 widths, handed to Pythia undecayed as its MadGraph events
# were; anti-kT R = 0.4 (processing/anaSubstructure.cpp: RPARAM), each event's leading jet labelled
# by its process, kept when its pT is within 800-1600 GeV (steerScript.sh ADD_CUTS for the pt1
# samples); the detector of detector.py (tag r1_h022_e0175_t220_nonu). Where it is silent (how the
# W and Z of its LHE files were polarised: they came from outside the repository), the W and Z are
# decayed longitudinally: the real data set separates as only few one-prong W/Z jets allow
# (benchmarks/bench_recipes.py and separability_limits.py), and hls4ml-lhc-jets-isotropic keeps
# the other reading (Pythia's isotropic decay of LHE bosons). particle-level is qapflow's first
# recipe: visible particles, R = 0.8, jets matched to the hard partons and bosons.
_HLS4ML = GeneratorSettings(recipe="hls4ml-lhc-jets", pthat_min_gev=995.0, pthat_max_gev=1005.0,
                            jet_radius=0.4, jet_min_pt_gev=800.0, jet_max_pt_gev=1600.0,
                            jet_selection="leading", detector=DetectorSettings(),
                            resonance_decays="longitudinal", resonance_mass_window_widths=15.0)
RECIPES: dict[str, GeneratorSettings] = {
    "hls4ml-lhc-jets": _HLS4ML,
    "hls4ml-lhc-jets-isotropic": replace(_HLS4ML, recipe="hls4ml-lhc-jets-isotropic",
                                         resonance_decays="isotropic"),
    "particle-level": GeneratorSettings(),
}
DEFAULT_RECIPE = "hls4ml-lhc-jets"
