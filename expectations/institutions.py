"""Suite for the ``institutions`` reference snapshot (when the extract carries one)."""
from __future__ import annotations

import great_expectations as gx

from pipeline import contract
from expectations._suite import Check, rule

E = gx.expectations
TABLE = "institutions"
KEY = ("institution_id",)

BATCH_SQL = "SELECT *, CAST($extract_date AS DATE) AS extract_date FROM new_institutions"

_REQUIRED = [f.name for f in contract.INSTITUTIONS if not f.nullable and f.name not in KEY]


def rules(cfg, extract_date: str):
    return [
        rule("columns_present", "MISSING_COLUMN", "Every contract column present", "合同字段齐全",
             E.ExpectTableColumnsToMatchSet(column_set=list(contract.INSTITUTIONS.names), exact_match=False)),
        rule("institution_id_not_null", "NULL_KEY", "Institution id present", "机构编码不为空",
             E.ExpectColumnValuesToNotBeNull(column="institution_id")),
        rule("required_not_null", "NULL_REQUIRED", "Required columns present", "必填字段不为空",
             *[E.ExpectColumnValuesToNotBeNull(column=c) for c in _REQUIRED]),
        rule("kind_known", "UNKNOWN_ENUM", "Kind is a contract value", "机构类别为合法值",
             E.ExpectColumnValuesToBeInSet(column="kind", value_set=list(contract.INSTITUTION_KINDS))),
        rule("level_known", "UNKNOWN_ENUM", "Level is 0..3", "机构等级为合法值",
             E.ExpectColumnValuesToBeInSet(column="level", value_set=list(contract.INSTITUTION_LEVELS))),
        rule("ownership_known", "UNKNOWN_ENUM", "Ownership is public or private", "所有制为合法值",
             E.ExpectColumnValuesToBeInSet(column="ownership", value_set=list(contract.OWNERSHIPS))),
        rule("contract_end_not_before_start", "CONTRACT_END_BEFORE_START",
             "Agreement ends on or after it starts", "协议终止日期不早于起始日期",
             E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="contract_end", column_B="contract_start",
                                                       or_equal=True, ignore_row_if="either_value_is_missing")),
    ]


CHECKS = [
    Check("institution_id_unique", "DUPLICATE_KEY", "Institution id unique in the snapshot", "机构编码唯一",
          "SELECT institution_id, count(*) AS copies FROM {batch} WHERE institution_id IS NOT NULL "
          "GROUP BY 1 HAVING count(*) > 1"),
]
