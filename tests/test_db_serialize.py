"""TrialRecord <-> JSON for the silver page_records table."""

import dataclasses
import datetime as dt
import json

import pytest

from pipeline.db.load import page_record_rows
from pipeline.models import (
    Arm, Contact, Criterion, Identifier, Intervention, Location, TrialRecord,
)
from pipeline.serialize import (
    RecordDecodeError, record_from_dict, record_from_json, record_to_dict, record_to_json,
)

FULL = TrialRecord(
    nct_id="NCT04599543", brief_title="IL3 CAR-T “Therapy”", official_title="Official",
    acronym="IL3", lead_sponsor="Zhejiang University", overall_status="RECRUITING",
    phases=("PHASE1", "PHASE2"), study_type="INTERVENTIONAL", enrollment=36,
    enrollment_type="ESTIMATED", sex="ALL", min_age="18 Years", max_age="75 Years",
    min_age_years=18.0, max_age_years=75.5, healthy_volunteers=False,
    brief_summary="Line 1\nLine 2", detailed_description="Détails", primary_purpose="TREATMENT",
    allocation="NA", intervention_model="SINGLE_GROUP", masking="NONE",
    start_date=dt.date(2024, 4, 11), primary_completion_date=dt.date(2026, 1, 1),
    completion_date=dt.date(2027, 12, 31), first_submitted_date=dt.date(2020, 10, 20),
    last_update_date=dt.date(2025, 6, 14), funder_types=("OTHER",),
    conditions=("AML", "BPDCN"), keywords=("CAR-T",),
    identifiers=(Identifier("nct", "NCT04599543"), Identifier("org_study_id", "CD123-001")),
    interventions=(Intervention("BIOLOGICAL", "IL3 CAR-T", "cells"), Intervention(None, "X")),
    arms=(Arm("Arm A", "EXPERIMENTAL", "desc", ("Biological: IL3 CAR-T",)), Arm("B", None)),
    criteria=(Criterion("inclusion", 1, None, "Adults"), Criterion("inclusion", 2, 1, "Sub"),
              Criterion("exclusion", 1, None, "Pregnant")),
    contacts=(Contact("central_contact", "Jane Doe", "MD, PhD", "Hospital", "+1 555", "j@x.org",
                      "Principal Investigator"),),
    locations=(Location("Hospital", "Hangzhou", "Zhejiang", "China", "RECRUITING"),
               Location(None, None, None, "China")),
)


def test_full_record_round_trips_losslessly():
    assert record_from_json(record_to_json(FULL)) == FULL


def test_empty_record_round_trips():
    assert record_from_json(record_to_json(TrialRecord())) == TrialRecord()


def test_json_uses_iso_dates_lists_and_every_field_in_order():
    data = json.loads(record_to_json(FULL))
    assert list(data) == [f.name for f in dataclasses.fields(TrialRecord)]
    assert data["start_date"] == "2024-04-11"
    assert data["phases"] == ["PHASE1", "PHASE2"]
    assert data["arms"][0] == {"label": "Arm A", "arm_type": "EXPERIMENTAL",
                               "description": "desc", "interventions": ["Biological: IL3 CAR-T"]}
    assert "“Therapy”" in record_to_json(FULL)  # not \u-escaped


def test_output_is_deterministic():
    assert record_to_json(FULL) == record_to_json(dataclasses.replace(FULL))


def test_older_json_missing_fields_and_unknown_fields_still_decode():
    data = record_to_dict(FULL)
    del data["keywords"]
    data["field_from_the_future"] = 1
    decoded = record_from_dict(data)
    assert decoded.keywords == ()
    assert decoded.conditions == FULL.conditions


def test_integer_in_float_field_becomes_float():
    data = record_to_dict(TrialRecord(min_age_years=18.0))
    data["min_age_years"] = 18
    value = record_from_dict(data).min_age_years
    assert value == 18.0 and isinstance(value, float)


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"enrollment": "many"}', '{"phases": "PHASE1"}',
    '{"criteria": [{"criterion_type": "maybe", "ordinal": 1, "parent_ordinal": null, "text": "x"}]}',
    '{"arms": [{"arm_type": "EXPERIMENTAL"}]}', '{"healthy_volunteers": 1}',
])
def test_malformed_json_raises_decode_error(text):
    with pytest.raises(RecordDecodeError):
        record_from_json(text)


def test_round_trip_through_the_page_records_table(fresh_db, parsed_page):
    page = parsed_page("p1", FULL)
    fresh_db.register("rows", page_record_rows([page]))
    fresh_db.execute("INSERT INTO page_records BY NAME SELECT * FROM rows")
    ((stored,),) = fresh_db.execute("SELECT record FROM page_records").fetchall()
    assert record_from_json(stored) == FULL
    # DuckDB can query into the JSON too
    assert fresh_db.execute(
        "SELECT record->>'$.nct_id', record->>'$.start_date' FROM page_records"
    ).fetchall() == [("NCT04599543", "2024-04-11")]


def test_orjson_path_round_trips_tiny_floats_and_falls_back_for_huge_integers():
    tiny = TrialRecord(nct_id="NCT00000001", min_age_years=1.9e-06, max_age_years=0.019230769230769232)
    text = record_to_json(tiny)
    assert '"min_age_years":1.9e-6' in text  # orjson's spelling (json: 1.9e-06); the same value
    assert record_from_json(text) == tiny
    huge = TrialRecord(nct_id="NCT00000002", enrollment=10**30)
    text = record_to_json(huge)
    assert '"enrollment":1000000000000000000000000000000' in text
    assert record_from_json(text).enrollment == 10**30


@pytest.mark.parametrize("item, expected", [
    ({"criterion_type": "inclusion", "ordinal": 2, "parent_ordinal": None, "text": "Age 18"},
     Criterion("inclusion", 2, None, "Age 18")),
    ({"criterion_type": "inclusion", "ordinal": 2, "text": "Age 18", "extra": 1},  # same size, a key swapped
     RecordDecodeError),
    ({"criterion_type": "inclusion", "ordinal": True, "parent_ordinal": None, "text": "x"}, RecordDecodeError),
    ({"criterion_type": "other", "ordinal": 1, "parent_ordinal": None, "text": "x"}, RecordDecodeError),
    ({"criterion_type": "inclusion", "ordinal": 1, "parent_ordinal": 1.5, "text": "x"}, RecordDecodeError),
    ({"criterion_type": "inclusion", "ordinal": 1, "parent_ordinal": None, "text": 7}, RecordDecodeError),
])
def test_the_compiled_decoder_agrees_with_the_general_one(item, expected):
    from pipeline.serialize import _decoder

    compiled = _decoder(Criterion)
    general = compiled.__globals__["general"]  # the decoder the compiled one falls back to

    def outcome(decode):
        try:
            return decode(dict(item))
        except RecordDecodeError as exc:
            return RecordDecodeError, str(exc)

    got = outcome(compiled)
    assert got == outcome(general)
    if expected is RecordDecodeError:
        assert got[0] is RecordDecodeError
    else:
        assert got == expected
