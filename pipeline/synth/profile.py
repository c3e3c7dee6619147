"""World profiles: the shape of a synthetic world (how many institutions of which kind,
how busy each is, who the insured are, how chronic care and prices look).

The detectors must not pass only on one generator's habits, so the generator can write
two differently shaped worlds with the same contract: ``standard`` (a mixed urban
region) and ``county`` (fewer, busier hospitals and many community clinics, an older
population in larger households with more chronic disease, weekly to monthly refills,
prices drawn further below the caps, more weekend activity). Tests run the honest-world
checks on both.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    institutions_per_scale: int = 150
    kind_mix: tuple = (0.22, 0.28, 0.20, 0.30)         # hospital, clinic, community, pharmacy
    hospital_levels: tuple = (0.2, 0.4, 0.4)           # level 3, 2, 1
    outpatient_weights: tuple = (12.0, 6.0, 2.5, 1.0, 1.5)  # L3, L2, L1 hospital, clinic, community
    persons_per_scale: int = 20000
    household_sizes: tuple = (0.25, 0.3, 0.25, 0.15, 0.05)  # 1..5 people
    age_mix: tuple = (0.18, 0.60, 0.22)                # child, adult, elderly
    shared_phone_share: float = 0.6                    # households on one registered phone
    inpatient_pool: float = 0.30                       # share of persons who may be admitted
    chronic_rate: tuple = (0.08, 0.35)                 # adults, elderly
    chronic_periods: tuple = (14, 28)                  # days between refills (= days supplied)
    chronic_period_p: tuple = (0.3, 0.7)
    settlements_per_scale: int = 2000                  # a weekday's settlements at scale 1
    weekend_factor: float = 0.75
    at_cap_share: float = 0.3                          # capped prices set exactly at the cap
    price_floor: float = 0.85                          # other capped prices: this..1 of the cap


PROFILES = {
    "standard": Profile("standard"),
    "county": Profile(
        "county",
        institutions_per_scale=110,
        kind_mix=(0.12, 0.18, 0.36, 0.34),
        hospital_levels=(0.3, 0.5, 0.2),
        outpatient_weights=(30.0, 9.0, 2.0, 0.8, 3.0),
        persons_per_scale=18000,
        household_sizes=(0.15, 0.3, 0.2, 0.2, 0.15),
        age_mix=(0.12, 0.50, 0.38),
        shared_phone_share=0.75,
        inpatient_pool=0.35,
        chronic_rate=(0.12, 0.5),
        chronic_periods=(7, 14, 28),
        chronic_period_p=(0.25, 0.35, 0.4),
        settlements_per_scale=2400,
        weekend_factor=0.9,
        at_cap_share=0.1,
        price_floor=0.7,
    ),
}


def get(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown world profile {name!r}; known: {', '.join(PROFILES)}") from None
