"""The hard process handed to a second Pythia through the Les Houches interface.

The original data set was made in two programs: MadGraph wrote the 2->2 hard process with the
W, Z and t undecayed (generation/run_card_ptbin.dat cuts on their pT, pt_min_pdg), and Pythia 8.2
read those Les Houches events and did everything else. Pythia knows no spin state for a
resonance it reads that way, so it decays W and Z isotropically in their rest frame; only
t -> b W -> b f fbar keeps its process-independent correlations (Pythia's LHA documentation).
Pythia's own ffbar -> WW and ffbar -> ZZ decay the bosons with the matrix element's angular
correlations instead, more transverse than isotropic at 1 TeV: 24% of their decays give a prong
below z_cut = 0.1, which mMDT then grooms away, against 20% for an isotropic decay (6% for a
longitudinal one, boson_decays.py).

`TwoStagePythia` reproduces the two-program chain in one process: a first Pythia makes only the
hard process (resonance decays, showers and hadronisation off), `ProcessRecordHandoff` hands
its process record over as a Les Houches event, and a second Pythia showers, decays and
hadronises it. Both are seeded from the chunk's seed. pythia8mc's own LHAupFromPYTHIA8 cannot
be used: it reads the scale from an Info that pythia8mc only gives out as a copy made when it is
asked for, so every event got scale 0 and no shower.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from qapflow.data.generate.boson_decays import POLARISED_BOSONS, LongitudinalDecayer
from qapflow.data.generate.processes import PYTHIA_MAX_SEED

HARD_PROCESS_ONLY = (
    "ProcessLevel:resonanceDecays = off",
    "PartonLevel:all = off",
    "HadronLevel:all = off",
)
RESONANCES = (6, 23, 24)  # t, Z, W: the particles MadGraph's run card names in pt_min_pdg
LHA_PROCESS_ID = 9999
UNKNOWN_SPIN = 9.0  # the Les Houches value for "no helicity information"
DECAY_COLOUR = 801  # colour tags of the decays added here, above those of Pythia's process (101...)


def read_settings(pythia, lines: list[str], error) -> None:
    """Read every setting into `pythia`, raising `error` on the first one it rejects."""
    for line in lines:
        if not pythia.readString(line):
            raise error(f"Pythia rejected the setting {line!r}")


@cache  # one class per process: pythia8mc is imported only when jets are generated
def _handoff_class():
    import pythia8mc

    class ProcessRecordHandoff(pythia8mc.LHAup):
        """A Les Houches source reading the current process record of another Pythia."""

        def __init__(self, source, ecm_gev: float):
            super().__init__()
            self.source, self.beam_energy = source, ecm_gev / 2
            self.decayer = None  # boson_decays.LongitudinalDecayer, or None: Pythia decays

        def setInit(self):
            self.setBeamA(2212, self.beam_energy)
            self.setBeamB(2212, self.beam_energy)
            self.setStrategy(3)  # unweighted events, accepted as they come
            self.addProcess(LHA_PROCESS_ID, 1.0, 0.0, 1.0)
            return True

        def setEvent(self, idProcess=0):
            info, record = self.source.infoPython(), self.source.process
            self.setProcess(LHA_PROCESS_ID, 1.0, info.QFac(), info.alphaEM(), info.alphaS())
            # the record: 0 the system, 1-2 the beams, 3-4 the incoming partons, then the outgoing
            lha_row: dict[int, int] = {}
            decays = []
            for i in range(3, record.size()):
                p = record[i]
                lha_row[i] = len(lha_row) + 1
                incoming = i in (3, 4)
                decayed = (self.decayer is not None and p.isFinal()
                           and p.idAbs() in POLARISED_BOSONS)
                status = -1 if incoming else (2 if decayed or not p.isFinal() else 1)
                mothers = (0, 0) if incoming else (lha_row.get(p.mother1(), 0), lha_row.get(p.mother2(), 0))
                self.addParticle(p.id(), status, *mothers, p.col(), p.acol(), p.px(), p.py(), p.pz(),
                                 p.e(), p.m(), 0.0, UNKNOWN_SPIN, p.scale())
                if decayed:
                    decays.append((lha_row[i], p))
            for n, (row, boson) in enumerate(decays):
                self._add_decay(row, boson, DECAY_COLOUR + n)
            return True

        def _add_decay(self, row: int, boson, colour: int) -> None:
            """The boson's two quarks: a colour singlet pair, showered from the boson mass."""
            momentum = np.array([boson.px(), boson.py(), boson.pz(), boson.e()])
            for pdg, p4 in self.decayer(boson.id(), momentum):
                col, acol = (colour, 0) if pdg > 0 else (0, colour)
                mass = np.sqrt(max(p4[3] ** 2 - p4[:3] @ p4[:3], 0.0))
                self.addParticle(pdg, 1, row, row, col, acol, *p4, mass, 0.0, UNKNOWN_SPIN, boson.m())

    return ProcessRecordHandoff


class TwoStagePythia:
    """next(), event and process like a Pythia, with the hard process made by another Pythia."""

    def __init__(self, hard_settings: list[str], decay_settings: list[str], seed: int, ecm_gev: float,
                 error, mass_window_widths: float | None = None, longitudinal_bosons: bool = False):
        import pythia8mc

        self.hard = pythia8mc.Pythia("", False)
        read_settings(self.hard, [*hard_settings, *HARD_PROCESS_ONLY,
                               *self._mass_windows(self.hard, mass_window_widths)], error)
        if not self.hard.init():
            raise error("Pythia failed to initialise the hard process")
        self._handoff = _handoff_class()(self.hard, ecm_gev)  # must outlive self.full
        self.full = pythia8mc.Pythia("", False)
        read_settings(self.full, [
            "Beams:frameType = 5", *decay_settings, "Print:quiet = on",
            "Random:setSeed = on", f"Random:seed = {seed % PYTHIA_MAX_SEED + 1}",
        ], error)
        if longitudinal_bosons:  # the decay table as the decay settings left it
            self._handoff.decayer = LongitudinalDecayer(self.full.particleData, np.random.default_rng(seed))
        self.full.setLHAupPtr(self._handoff)
        if not self.full.init():
            raise error("Pythia failed to initialise from the handed-over hard process")

    @staticmethod
    def _mass_windows(pythia, widths: float | None) -> list[str]:
        """MadGraph's bwcutoff: W, Z and t masses within `widths` widths of the pole. Without it
        Pythia's Breit-Wigner reaches far up its tail at 1 TeV (a 1.2 TeV "W" now and then)."""
        if widths is None:
            return []
        data = pythia.particleData
        return [line for pdg in RESONANCES for line in (
            f"{pdg}:mMin = {data.m0(pdg) - widths * data.mWidth(pdg):.4f}",
            f"{pdg}:mMax = {data.m0(pdg) + widths * data.mWidth(pdg):.4f}")]

    def next(self) -> bool:
        return self.hard.next() and self.full.next()

    @property
    def event(self):
        return self.full.event

    @property
    def process(self):
        return self.full.process
