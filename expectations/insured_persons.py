"""Suite for the ``insured_persons`` reference snapshot (when the extract carries one)."""
from __future__ import annotations

import great_expectations as gx

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "insured_persons"
KEY = ("patient_id",)

BATCH_SQL = "SELECT *, CAST($extract_date AS DATE) AS extract_date FROM new_insured_persons"

_REQUIRED = [f.name for f in contract.INSURED_PERSONS if not f.nullable and f.name not in KEY]


def rules(cfg, extract_date: str):
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.INSURED_PERSONS.names), exact_match=False)),
        rule("patient_id_not_null", "NULL_KEY", "Patient id present", "参保人ID不为空",
             E.ExpectColumnValuesToNotBeNull(column="patient_id")),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
        rule("sex_known", "UNKNOWN_ENUM", "Sex is M or F", "性别为合法值",
             E.ExpectColumnValuesToBeInSet(column="sex", value_set=list(contract.SEXES))),
        rule("insurance_type_known", "UNKNOWN_ENUM", "Insurance type is a contract value", "险种为合法值",
             E.ExpectColumnValuesToBeInSet(column="insurance_type", value_set=list(contract.INSURANCE_TYPES))),
        rule("birth_not_in_future", "FUTURE_DATE", "Born on or before the extract date", "出生日期不晚于抽取日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="extract_date", column_B="birth_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
        rule("death_not_before_birth", "DEATH_BEFORE_BIRTH", "Death not before birth", "死亡日期不早于出生日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="death_date", column_B="birth_date",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
    ]


CHECKS = [
    Check("patient_id_unique", "DUPLICATE_KEY", "Patient id unique in the snapshot", "参保人ID唯一",
          "SELECT patient_id, count(*) AS copies FROM {batch} WHERE patient_id IS NOT NULL "
          "GROUP BY 1 HAVING count(*) > 1"),
]
