"""Cell-therapy profiles, dose levels, schedules and escalation designs -- the seeds and variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models import Intervention
from pipeline.therapy import (
    DoseLevel,
    TherapyProfile,
    dose_levels,
    escalation_design,
    infusion_schedule,
    profile_interventions,
)

SEEDS = Path(__file__).resolve().parents[1] / "raw" / "sample" / "seeds"


def _seed(n: int) -> list[str]:
    path = next(SEEDS.glob(f"{n:03d}_*.txt"))
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def _section(lines: list[str], start: str, stop: str) -> str | None:
    """Visible text between a heading line and the next one (the way a reader sees the page)."""
    if start not in lines:
        return None
    i = lines.index(start) + 1
    out = []
    while i < len(lines) and lines[i] != stop:
        if lines[i]:
            out.append(lines[i])
        i += 1
    return " ".join(out) or None


def _veeva_inputs(n: int) -> tuple[list[tuple[str, str, None]], str | None, str | None, str | None]:
    lines = _seed(n)
    title = next((ln for ln in lines[lines.index("Menu") + 1:] if ln), None) if "Menu" in lines else None
    ivs = []
    for line in lines[lines.index("Treatments") + 1:]:
        if line == "Study type":
            break
        if ":" in line:
            kind, name = line.split(":", 1)
            ivs.append((kind.strip().upper(), name.strip(), None))
    return ivs, title, _section(lines, "About", "Full description"), _section(lines, "Full description", "Enrollment")


def _doses(profile: TherapyProfile) -> list[tuple[int, float, str, bool]]:
    return [(d.level, d.value, d.unit, d.per_kg) for d in profile.dose_levels]


def test_seed000_cd123_car_nk() -> None:
    (p,) = profile_interventions(*_veeva_inputs(0))
    assert (p.intervention_type, p.intervention_name) == ("DRUG", "Anti-CD123 CAR NK cells")
    assert (p.modality, p.targets) == ("CAR-NK", ("CD123",))
    assert _doses(p) == [(1, 1e7, "cells/kg", True), (2, 3e7, "cells/kg", True), (3, 5e7, "cells/kg", True)]
    assert p.dose_levels[0].description == "1×107 CAR-positive cells/kg"
    assert p.infusion_schedule == ("D0", "D7")
    assert p.escalation_design == ()


def test_seed001_il3_ligand_car_targets_cd123() -> None:
    (p,) = profile_interventions(*_veeva_inputs(1))
    assert (p.intervention_name, p.modality, p.targets) == ("IL3 CAR T-cells", "CAR-T", ("CD123",))
    assert p.dose_levels == ()


def test_seed002_cd19_car_nk_doses() -> None:
    (p,) = profile_interventions(*_veeva_inputs(2))
    assert (p.intervention_type, p.modality, p.targets) == ("BIOLOGICAL", "CAR-NK", ("CD19",))
    assert _doses(p) == [(1, 1e7, "cells/kg", True), (2, 2e7, "cells/kg", True), (3, 3e7, "cells/kg", True)]
    assert p.infusion_schedule == ("D0",)  # lymphodepletion days (-5~-3) are not infusions


def test_seed003_nk_targeting_cll1_or_cd33_without_listed_interventions() -> None:
    lines = _seed(3)
    (p,) = profile_interventions([], lines[0], None, None)
    assert p.intervention_name is None
    assert (p.modality, p.targets) == ("NK", ("CLEC12A", "CD33"))


def test_seed004_cd7_car_nk_with_accelerated_titration_then_3_plus_3() -> None:
    lines = _seed(4)
    summary = _section(lines, "About", "Full description")
    description = _section(lines, "Full description", "Enrollment")
    (p,) = profile_interventions([], None, summary, description)
    assert (p.modality, p.targets) == ("CAR-NK", ("CD7",))
    assert _doses(p) == [(1, 1e7, "cells/kg", True), (2, 2e7, "cells/kg", True), (3, 5e7, "cells/kg", True)]
    assert p.escalation_design == ("accelerated_titration", "3+3")
    assert p.cell_source == ()  # "NK cell subtypes in peripheral blood were observed" is biology, not a source


@pytest.mark.parametrize("text", [
    "1×107 CAR-positive cells/kg", "1.0 × 107 CAR positive NK cells/kg", "1×10^7 CAR-NK cells/kg",
    "1x10e7 cells/kg", "1 × 10⁷ cells/kg", "1e7 CAR+ cells/kg", "10 million cells/kg", "1.0x10^7 CAR-T cells/kg",
])
def test_dose_spellings(text: str) -> None:
    assert [(d.value, d.unit, d.per_kg) for d in dose_levels(text)] == [(1e7, "cells/kg", True)]


def test_dose_list_shares_the_trailing_unit_and_levels_ascend() -> None:
    got = dose_levels("Subsequent dose groups: 3.0 × 107, 1.0 × 107 and 2.0 × 107 CAR positive NK cells/kg.")
    assert [(d.level, d.value) for d in got] == [(1, 1e7), (2, 2e7), (3, 3e7)]
    flat = dose_levels("a flat dose of 2 x 10^8 CAR-T cells")
    assert flat == (DoseLevel(1, 2e8, "cells", False, "2 x 10^8 CAR-T cells"),)


def test_counts_are_not_doses() -> None:
    assert dose_levels("white blood cells >1.0×109/L, platelets >50×109/L") == ()
    assert dose_levels(None) == ()


def test_infusion_schedule_variants() -> None:
    assert infusion_schedule("Patients receive infusions on days 0, 7 and 14.") == ("D0", "D7", "D14")
    assert infusion_schedule("Lymphodepletion on D-5 to D-3; CAR-T infusion on D0.") == ("D0",)
    assert infusion_schedule("Follow-up visits on day 28 and day 90.") == ()


@pytest.mark.parametrize(("text", "want"), [
    ("a standard 3+3 design", ("3+3",)),
    ("dose escalation follows the i3+3 design", ("i3+3",)),
    ("Bayesian optimal interval (BOIN) design", ("BOIN",)),
    ("the mTPI-2 method guides escalation", ("mTPI",)),
    ("a continual reassessment method (CRM)", ("CRM",)),
    ("accelerated titration for the first dose group and the standard '3+3' rule", ("accelerated_titration", "3+3")),
    ("no escalation here", ()),
])
def test_escalation_designs(text: str, want: tuple[str, ...]) -> None:
    assert escalation_design(text) == want


@pytest.mark.parametrize(("name", "modality", "targets"), [
    ("Anti-BCMA CAR-T cells", "CAR-T", ("BCMA",)),
    ("CLL-1 CAR-T", "CAR-T", ("CLEC12A",)),
    ("NKG2D CAR-NK cells", "CAR-NK", ("NKG2DL",)),
    ("CD19/CD22 bispecific CAR-T", "CAR-T", ("CD19", "CD22")),
    ("NY-ESO-1 TCR-T cells", "TCR-T", ("NY-ESO-1",)),
    ("Tumor infiltrating lymphocytes (TIL)", "TIL", ()),
    ("GPC3-targeted CAR T cells", "CAR-T", ("GPC3",)),
    ("Fludarabine", "other", ()),
    ("CLL1-CD33 cCAR T cells", "CAR-T", ("CLEC12A", "CD33")),
    ("Haploidentical NK cells", "NK", ()),
    ("Tisagenlecleucel", "CAR-T", ("CD19",)),
    ("Idecabtagene vicleucel", "CAR-T", ("BCMA",)),
])
def test_modality_and_target_synonyms(name: str, modality: str, targets: tuple[str, ...]) -> None:
    (p,) = profile_interventions([("BIOLOGICAL", name, None)])
    assert (p.modality, p.targets) == (modality, targets)


def test_source_and_engineering_and_intervention_objects() -> None:
    ivs = [
        Intervention("BIOLOGICAL", "CD19 CAR-NK", "Cord blood-derived NK cells transduced with a CD19 CAR "
                     "(CD28 costimulatory domain, CD3zeta) that secretes IL-15, with an iCasp9 safety switch."),
        Intervention("DRUG", "Cyclophosphamide", "Lymphodepletion"),
    ]
    car, lymphodepletion = profile_interventions(ivs, "Allogeneic CAR-NK for B-cell lymphoma")
    assert car.cell_source == ("allogeneic", "cord blood")
    assert car.engineering == ("CD28", "CD3zeta", "IL-15", "safety switch")
    assert (lymphodepletion.modality, lymphodepletion.dose_levels) == ("other", ())


def test_patient_history_is_not_a_cell_source() -> None:
    (p,) = profile_interventions([("BIOLOGICAL", "CD19 CAR-T cells", None)], None,
                                 "For patients who relapsed after allogeneic stem cell transplantation.")
    assert p.cell_source == ()
    (p,) = profile_interventions([("BIOLOGICAL", "CD19 CAR-T cells",
                                   "T cells collected from the patient's peripheral blood")])
    assert p.cell_source == ("peripheral blood",)
