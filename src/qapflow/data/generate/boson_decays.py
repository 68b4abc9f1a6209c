"""Hadronic W and Z decays with a chosen helicity, done before Pythia sees the event.

Pythia decays a W or Z it reads from a Les Houches event isotropically; to generate bosons of a
given polarisation (here longitudinal: decay-angle density 3/4 (1 - cos^2 theta) in the
boson's helicity frame, as a heavy scalar or a bulk graviton gives them) the decay must already
be in the event, as MadSpin would write it. Written here because no library on PyPI does one
polarised two-body decay; the channels and their branching ratios are read from Pythia's own
decay table, with the recipe's onMode settings applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLARISED_BOSONS = (23, 24)


@dataclass(frozen=True)
class Channel:
    ids: tuple[int, int]  # the fermion, then the antifermion, for a W+ or a Z
    branching: float


def open_channels(particle_data, pdg: int) -> list[Channel]:
    """Two-body channels switched on for `pdg` in a Pythia's particle data, with their BRs."""
    entry = particle_data.particleDataEntryPtr(pdg)
    found = []
    for i in range(entry.sizeChannels()):
        channel = entry.channel(i)
        if channel.onMode() > 0 and channel.multiplicity() == 2 and channel.bRatio() > 0:
            a, b = channel.product(0), channel.product(1)
            found.append(Channel((a, b) if a > 0 else (b, a), channel.bRatio()))
    return found


def longitudinal_cos_theta(rng: np.random.Generator) -> float:
    """cos(theta) drawn from 3/4 (1 - c^2) on [-1, 1], by rejection."""
    while True:
        c = rng.uniform(-1.0, 1.0)
        if rng.uniform() < 1.0 - c * c:
            return c


def two_body_decay(boson: np.ndarray, masses: tuple[float, float], cos_theta: float, phi: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Four-momenta (px, py, pz, E) of the two daughters of `boson`, the first at polar angle
    acos(cos_theta) to the boson's flight direction in its rest frame (the helicity frame)."""
    mass = np.sqrt(max(boson[3] ** 2 - boson[:3] @ boson[:3], 0.0))
    m1, m2 = masses
    p = np.sqrt(max((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)) / (2 * mass)
    axis = boson[:3] / np.linalg.norm(boson[:3])
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    sin_theta = np.sqrt(max(1.0 - cos_theta**2, 0.0))
    direction = sin_theta * np.cos(phi) * e1 + sin_theta * np.sin(phi) * e2 + cos_theta * axis
    rest = [np.append(p * direction, np.hypot(p, m1)), np.append(-p * direction, np.hypot(p, m2))]
    return tuple(_boost(v, boson[:3] / boson[3]) for v in rest)


def _boost(v: np.ndarray, beta: np.ndarray) -> np.ndarray:
    b2 = beta @ beta
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = beta @ v[:3]
    space = v[:3] + ((gamma - 1.0) * bp / b2 + gamma * v[3]) * beta
    return np.append(space, gamma * (v[3] + bp))


class LongitudinalDecayer:
    """Picks a channel by branching ratio and decays a W or Z longitudinally."""

    def __init__(self, particle_data, rng: np.random.Generator):
        self.rng = rng
        self.mass = particle_data.m0
        self.channels = {pdg: open_channels(particle_data, pdg) for pdg in POLARISED_BOSONS}
        self.weights = {pdg: np.array([c.branching for c in ch]) / sum(c.branching for c in ch)
                        for pdg, ch in self.channels.items() if ch}

    def __call__(self, pdg: int, boson: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """[(id, four-momentum)] of the decay products: the fermion first, then the antifermion."""
        channels = self.channels[abs(pdg)]
        a, b = channels[self.rng.choice(len(channels), p=self.weights[abs(pdg)])].ids
        if pdg < 0:  # a W-: the charge conjugate of the W+ channel
            a, b = -b, -a
        daughters = two_body_decay(boson, (self.mass(a), self.mass(b)),
                                   longitudinal_cos_theta(self.rng), self.rng.uniform(0, 2 * np.pi))
        return [(a, daughters[0]), (b, daughters[1])]
